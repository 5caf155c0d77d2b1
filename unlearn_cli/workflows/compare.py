"""Whole experiments in the layout of the paper's Table 1: train (or reuse) the original VAE and
the judge, run every method and the retrain reference for each seed, evaluate each run.

Every artefact is cached in the output directory under a key derived from the parts of the
resolved config it depends on, so an interrupted experiment resumes where it stopped and adding
a method reuses the originals already trained.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, overload

import torch

from unlearn_cli import __version__
from unlearn_cli.config import check_fields, is_int, load_yaml
from unlearn_cli.data.requests import Request, load_manifest, parse_requests
from unlearn_cli.data.spec import DatasetSpec
from unlearn_cli.engine.checkpoint import Checkpoint, atomic_write, load_checkpoint, save_checkpoint
from unlearn_cli.engine.progress import NullProgress, Progress
from unlearn_cli.errors import ConfigError, UnlearnError, UsageError
from unlearn_cli.methods import METHOD_NAMES

# Columns: key in an evaluate() result, header, direction: +1 higher is better, -1 lower,
# RETRAIN closest to the RETRAIN row's (IS over the judge's classes rewards still drawing the
# forgotten class, so more is not better), 0 no ranking.
RETRAIN = "retrain"
COLUMNS = (
    ("privacy.fratio", "fratio", -1),
    ("utility.is", "IS", RETRAIN),
    ("utility.fid", "FID", -1),
    ("utility.precision", "precision", +1),
    ("utility.recall", "recall", +1),
    ("utility.fid_reference", "FID vs RETRAIN", -1),
    ("cost.seconds", "Time (s)", -1),
    ("cost.percent_of_retrain", "Time (% retrain)", -1),
    ("utility.retain_elbo", "retain -ELBO", -1),
    ("utility.forget_elbo", "forget -ELBO", 0),  # should approach RETRAIN's, not a direction
    ("privacy.mia_auc", "MIA AUC", 0),  # 0.5 is ideal
)
DEFAULT_METHODS = ("ascent", "fu", "surgery", "redirect")

EXPERIMENT_KEYS = {
    "name": str,
    "dataset": dict,
    "model": dict,
    "train": dict,
    "judge": dict,
    "original": str,
    "forget": dict,
    "methods": list,
    "seeds": list,
    "evaluate": dict,
    "device": str,
    "out_dir": str,
}
DATASET_KEYS = {"name": str, "data_dir": str, "classes": list, "limit": int}
MODEL_KEYS = {"latent_dim": int, "hidden": list}
TRAIN_KEYS = {"epochs": int, "batch_size": int, "lr": float}
JUDGE_KEYS = {
    "epochs": int,
    "batch_size": int,
    "lr": float,
    "seed": int,
    "checkpoint": str,
    "attribute": str,
}
FORGET_KEYS = {"requests": list, "manifest": str}
EVALUATE_KEYS = {"samples": int, "seed": int, "batch_size": int}
METHOD_KEYS = {
    "method": str,
    "label": str,
    "params": str,
    "projection": str,
    "lr": float,
    "batch_size": int,
    "epochs": int,
    "steps": int,
    "alpha": float,
    "repair_steps": int,
    "min_steps": int,
}


@dataclass
class MethodRun:
    label: str  # row and file name, e.g. "surgery" or "surgery-all"
    method: str  # a name from METHOD_NAMES
    options: dict = field(default_factory=dict)  # overrides of the method's defaults


@dataclass
class Experiment:
    name: str
    dataset: DatasetSpec
    model: dict  # VAEConfig overrides of the dataset's preset
    train: dict  # TrainConfig fields except the seed
    judge: dict  # judge training settings, or {"checkpoint": path}
    requests: list[Request]
    methods: list[MethodRun]
    seeds: list[int]
    evaluate: dict  # samples, seed, batch_size
    original: str | None = None  # reuse this VAE for every seed instead of training one
    device: str = "auto"
    out_dir: Path = Path("runs")


@overload
def _resolve(base: Path, value: str) -> str: ...


@overload
def _resolve(base: Path, value: None) -> None: ...


def _resolve(base: Path, value: str | None) -> str | None:
    return None if value is None else str((base / value).expanduser().resolve())


def load_experiment(path: str | Path) -> Experiment:
    """Parse and check an experiment file; every problem is reported at once, before any work."""
    path = Path(path)
    raw = load_yaml(path)
    src, base = str(path), path.parent
    problems: list[str] = []
    top = check_fields(raw if raw is not None else {}, EXPERIMENT_KEYS, "experiment", problems)
    ds = check_fields(top.get("dataset") or {}, DATASET_KEYS, "dataset", problems)
    model = check_fields(top.get("model") or {}, MODEL_KEYS, "model", problems)
    train = check_fields(top.get("train") or {}, TRAIN_KEYS, "train", problems)
    judge = check_fields(top.get("judge") or {}, JUDGE_KEYS, "judge", problems)
    forget = check_fields(top.get("forget") or {}, FORGET_KEYS, "forget", problems)
    evaluate = check_fields(top.get("evaluate") or {}, EVALUATE_KEYS, "evaluate", problems)
    if "forget" not in top:
        problems.append("forget: missing; give `requests:` (a list) or `manifest:` (a file)")
    methods = []
    for n, item in enumerate(top.get("methods") or list(DEFAULT_METHODS), start=1):
        entry = {"method": item} if isinstance(item, str) else item
        where = f"methods[{n}]"
        entry = check_fields(entry, METHOD_KEYS, where, problems)
        name = entry.get("method")
        if name not in METHOD_NAMES or name == "retrain":
            known = ", ".join(m for m in METHOD_NAMES if m != "retrain")
            extra = " (retrain always runs, as the reference)" if name == "retrain" else ""
            problems.append(f"{where}: unknown method {name!r}; use one of {known}{extra}")
            continue
        options = {k: v for k, v in entry.items() if k not in ("method", "label")}
        methods.append(MethodRun(entry.get("label", name), name, options))
    labels = [m.label for m in methods]
    if len(labels) != len(set(labels)):
        problems.append("methods: two runs share a label; give each variant its own `label:`")
    seeds = top.get("seeds", [0])
    if not isinstance(seeds, list) or not seeds or not all(is_int(s) for s in seeds):
        problems.append(f"seeds: expected a non-empty list of integers, got {seeds!r}")
        seeds = [0]
    requests: list[Request] = []
    try:
        if "manifest" in forget:
            requests = load_manifest(_resolve(base, forget["manifest"]))
        elif "requests" in forget:
            requests = parse_requests({"requests": forget["requests"]}, f"{src} forget")
    except ConfigError as e:
        problems.extend(e.problems)
    spec = None
    try:
        spec = DatasetSpec(
            name=ds.get("name", "mnist"),
            root=_resolve(base, ds.get("data_dir")),
            classes=tuple(ds["classes"]) if ds.get("classes") else None,
            limit=ds.get("limit"),
        )
    except UnlearnError as e:
        problems.append(f"dataset: {e}")
    if problems:
        raise ConfigError(src, problems)
    assert spec is not None  # a DatasetSpec that failed added a problem above
    if "checkpoint" in judge:
        judge["checkpoint"] = _resolve(base, judge["checkpoint"])
    return Experiment(
        name=top.get("name", path.stem),
        dataset=spec,
        model=model,
        train=train,
        judge=judge,
        requests=requests,
        methods=methods,
        seeds=seeds,
        evaluate=evaluate,
        original=_resolve(base, top.get("original")),
        device=top.get("device", "auto"),
        out_dir=Path(_resolve(base, top.get("out_dir", f"runs/{path.stem}"))),
    )


def forgetting(exp: Experiment, target: str) -> Experiment:
    """The experiment with its requests replaced by one that forgets `target` (class:DIGIT or
    attr:NAME): one file serves every target of a dataset, sharing its originals and judge."""
    from unlearn_cli.workflows.evaluate import parse_target

    tgt = parse_target(target)
    if tgt.kind == "samples":
        raise UsageError(
            f"forget {target!r}: name a class:DIGIT or attr:NAME; samples need a manifest"
        )
    selector = "class" if tgt.kind == "class" else "attribute"
    name = f"forget-{tgt.kind}-{'-'.join(map(str, tgt.values))}"
    return dataclasses.replace(exp, requests=[Request(name, selector, tgt.values)])


def slug(label: str) -> str:
    """A file-name-safe form of a row label."""
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in label).strip("-")


def key(*parts) -> str:
    """A short fingerprint of JSON-able parts: the cache key of an artefact."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def target_of(requests: list[Request]) -> str | None:
    """What fratio counts for these requests; None for individual samples, which the
    membership-inference AUC scores instead."""
    from unlearn_cli.workflows.evaluate import default_target

    target = default_target(requests)
    return None if target is None or target.kind == "samples" else str(target)


class Runner:
    """Runs an experiment's artefacts in order, reusing whatever the cache already holds."""

    def __init__(self, exp: Experiment, device: torch.device, progress: Progress):
        self.exp, self.device, self.progress = exp, device, progress
        exp.out_dir.mkdir(parents=True, exist_ok=True)
        self.reused = 0
        self.made = 0

    def cached(self, name: str, make) -> Checkpoint:
        path = self.exp.out_dir / name
        if path.exists():
            self.reused += 1
            self.progress.log(f"reusing {path}")
            return load_checkpoint(path)
        ckpt = make()
        save_checkpoint(ckpt, path)
        self.made += 1
        return load_checkpoint(path)

    def judge(self) -> tuple[Checkpoint, str]:
        from unlearn_cli.engine.train import TrainConfig, train_judge
        from unlearn_cli.models import JudgeConfig

        j = self.exp.judge
        if "checkpoint" in j:
            ckpt = load_checkpoint(j["checkpoint"], "judge")
            assert ckpt.sha256 is not None  # load_checkpoint sets it
            return ckpt, ckpt.sha256
        spec = dataclasses.replace(self.exp.dataset, attribute=j.get("attribute"))
        cfg = TrainConfig(
            epochs=j.get("epochs", 3),
            batch_size=j.get("batch_size", 128),
            lr=j.get("lr", 1e-3),
            seed=j.get("seed", 0),
        )
        k = key("judge", spec.to_dict(), cfg.to_dict())
        model_cfg = JudgeConfig.from_name(spec.name, num_classes=spec.num_classes)
        return self.cached(
            f"judge-{k}.safetensors",
            lambda: train_judge(spec, model_cfg, cfg, self.device, self.progress),
        ), k

    def original(self, seed: int) -> tuple[Checkpoint, str]:
        from unlearn_cli.engine.train import TrainConfig, train_vae
        from unlearn_cli.models import VAEConfig

        if self.exp.original is not None:
            ckpt = load_checkpoint(self.exp.original, "vae")
            assert ckpt.sha256 is not None  # load_checkpoint sets it
            return ckpt, ckpt.sha256
        cfg = TrainConfig(**self.exp.train, seed=seed)
        model_cfg = VAEConfig.from_name(self.exp.dataset.name, **self.exp.model)
        k = key("original", self.exp.dataset.to_dict(), model_cfg.to_dict(), cfg.to_dict())
        return self.cached(
            f"original-s{seed}-{k}.safetensors",
            lambda: train_vae(self.exp.dataset, model_cfg, cfg, self.device, self.progress),
        ), k

    def unlearned(
        self, original: Checkpoint, original_key: str, run: MethodRun, seed: int
    ) -> tuple[Checkpoint, str]:
        from unlearn_cli.methods import configure, get_method
        from unlearn_cli.workflows.forget import plan_forget, run_forget

        options = dict(run.options)
        if run.method != "retrain":
            options["seed"] = seed  # retrain keeps the original's own seed
        method = get_method(run.method)
        cfg = configure(method, original, options)
        # the fully resolved settings and the code's version: a changed default or a new
        # release never reuses an old run
        resolved = dataclasses.asdict(cfg)
        k = key(
            run.method,
            original_key,
            [r.to_dict() for r in self.exp.requests],
            resolved,
            __version__,
        )

        def make():
            plan = plan_forget(original, self.exp.requests)
            self.progress.log(
                f"seed {seed}: {run.label} on {len(plan.forget)} forget and "
                f"{len(plan.retain)} retain samples"
            )
            return run_forget(original, plan, method, cfg, self.device, self.progress)

        return self.cached(f"{slug(run.label)}-s{seed}-{k}.safetensors", make), k

    def metrics(
        self,
        ckpt: Checkpoint,
        ckpt_key: str,
        judge: Checkpoint,
        judge_key: str,
        target: str | None,
        requests: list[Request] | None = None,
        reference: tuple[Checkpoint, str] | None = None,
    ) -> dict:
        """evaluate() of one checkpoint; `requests` score a model whose lineage names none,
        `reference` (the RETRAIN checkpoint and its key) gives FID against retraining."""
        from unlearn_cli.workflows.evaluate import evaluate

        ev = {"samples": 10000, "seed": 0, "batch_size": 500, **self.exp.evaluate}
        named = [r.to_dict() for r in requests] if requests is not None else None
        ref_key = reference[1] if reference is not None else None
        k = key(ckpt_key, judge_key, ev, target, named, ref_key, __version__)
        path = self.exp.out_dir / f"metrics-{k}.json"
        if path.exists():
            return json.loads(path.read_text())
        result = evaluate(
            ckpt,
            judge,
            target=target,
            device=self.device,
            progress=self.progress,
            root=self.exp.dataset.root,
            requests=requests,
            reference=reference[0] if reference is not None else None,
            **ev,
        )
        atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(result, indent=2)))
        return result


def run_title(run: MethodRun, original: Checkpoint) -> str:
    """The method's row label for the run's resolved settings."""
    from unlearn_cli.methods import configure, get_method

    method = get_method(run.method)
    return method.title_for(configure(method, original, dict(run.options)))


def run_experiment(exp: Experiment, device: torch.device, progress: Progress | None = None) -> dict:
    """Every run of the experiment, evaluated; returns {"rows": ..., "runs": ...}."""
    from unlearn_cli.workflows.evaluate import write_grid

    progress = progress or NullProgress()
    start = time.perf_counter()
    runner = Runner(exp, device, progress)
    judge, judge_key = runner.judge()
    target = target_of(exp.requests)
    runs: dict[str, list[dict]] = {}
    titles = {"BEFORE": "BEFORE"}
    for seed in exp.seeds:
        progress.log(f"seed {seed}")
        original, original_key = runner.original(seed)
        # the retrained reference first: every other row is also scored against its samples
        retrain = runner.unlearned(original, original_key, MethodRun("RETRAIN", "retrain"), seed)
        # the original's lineage names nothing: score it against the experiment's requests
        results = {
            "BEFORE": runner.metrics(
                original, original_key, judge, judge_key, target, exp.requests, retrain
            )
        }
        for run in [*exp.methods, MethodRun("RETRAIN", "retrain")]:
            child, child_key = (
                retrain
                if run.method == "retrain"
                else runner.unlearned(original, original_key, run, seed)
            )
            titles[run.label] = run.label if run.label != run.method else run_title(run, original)
            results[run.label] = runner.metrics(
                child, child_key, judge, judge_key, target, reference=retrain
            )
            grid = exp.out_dir / f"grid-{slug(run.label)}-s{seed}-{child_key}.png"
            if not grid.exists():
                write_grid(grid, child, before=original, device=device)
        retrain_seconds = results["RETRAIN"]["cost"]["seconds"]
        for label, result in results.items():
            result["cost"]["percent_of_retrain"] = (
                round(100 * result["cost"]["seconds"] / retrain_seconds, 2)
                if label not in ("BEFORE", "RETRAIN") and retrain_seconds
                else None
            )
            runs.setdefault(label, []).append(result)
    rows = [summarise(label, titles[label], results) for label, results in runs.items()]
    order = ["BEFORE", *(m.label for m in exp.methods), "RETRAIN"]
    rows.sort(key=lambda r: order.index(r["label"]))
    mark_best(rows)
    return {
        "experiment": exp.name,
        "dataset": exp.dataset.describe(),
        "target": target,
        "seeds": exp.seeds,
        "device": str(device),
        "judge": judge.metrics.get("test_accuracy"),
        "out_dir": str(exp.out_dir),
        "reused": runner.reused,
        "computed": runner.made,
        "wall_seconds": round(time.perf_counter() - start, 1),
        "rows": rows,
    }


def lookup(result: dict, dotted: str):
    group, name = dotted.split(".")
    return (result.get(group) or {}).get(name)


def summarise(label: str, title: str, results: list[dict]) -> dict:
    """Mean and sample standard deviation over seeds of every column."""
    cells: dict[str, dict[str, Any] | None] = {}
    for dotted, _, _ in COLUMNS:
        values = [v for v in (lookup(r, dotted) for r in results) if v is not None]
        if not values:
            cells[dotted] = None
            continue
        mean = sum(values) / len(values)
        std = (
            math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
            if len(values) > 1
            else 0.0
        )
        cells[dotted] = {"mean": mean, "std": std, "values": values, "best": False}
    return {"label": label, "title": title, "cells": cells, "models": [r["model"] for r in results]}


def mark_best(rows: list[dict]) -> None:
    """Flag the best unlearning method (not BEFORE, not RETRAIN) of each ranked column."""
    contenders = [r for r in rows if r["label"] not in ("BEFORE", "RETRAIN")]
    retrain = next((r for r in rows if r["label"] == "RETRAIN"), None)
    for dotted, _, direction in COLUMNS:
        scored = [r for r in contenders if r["cells"][dotted] is not None]
        if not direction or len(scored) < 2:
            continue
        if direction == RETRAIN:
            if retrain is None or retrain["cells"][dotted] is None:
                continue
            goal = retrain["cells"][dotted]["mean"]
            score = {id(r): -abs(r["cells"][dotted]["mean"] - goal) for r in scored}
        else:
            score = {id(r): direction * r["cells"][dotted]["mean"] for r in scored}
        best = max(score.values())
        for r in scored:  # ties share the bold
            r["cells"][dotted]["best"] = score[id(r)] == best


def tabulate_checkpoints(
    paths: list[Path],
    judge: Checkpoint,
    target: str | None,
    evaluate_options: dict,
    device: torch.device,
    progress: Progress | None = None,
) -> dict:
    """One row per existing checkpoint, scored with one judge."""
    from unlearn_cli.workflows.evaluate import evaluate

    progress = progress or NullProgress()
    rows = []
    for path in paths:
        ckpt = load_checkpoint(path, "vae")
        result = evaluate(
            ckpt, judge, target=target, device=device, progress=progress, **evaluate_options
        )
        methods = [e.get("method", "?") for e in ckpt.lineage]
        title = "+".join(methods) if methods else ("retrain" if ckpt.dataset.exclude else "before")
        rows.append(summarise(path.name, f"{path.name} ({title})", [result]))
    mark_best(rows)
    return {
        "experiment": None,
        "target": target,
        "device": str(device),
        "judge": judge.metrics.get("test_accuracy"),
        "rows": rows,
    }
