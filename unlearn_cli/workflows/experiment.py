"""An experiment file: the YAML schema of `unlearn compare`, parsed into an `Experiment` with every
problem of the file reported at once.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import overload

from unlearn_cli.config import check_fields, is_int, load_yaml
from unlearn_cli.data.requests import Request, load_manifest, parse_requests
from unlearn_cli.data.spec import DatasetSpec
from unlearn_cli.errors import ConfigError, UnlearnError, UsageError
from unlearn_cli.methods import METHOD_NAMES, check_options, option_types
from unlearn_cli.workflows.targets import Target

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
DATASET_KEYS = {"name": str, "data_dir": str, "classes": list, "limit": int, "image_size": int}
MODEL_KEYS = {"arch": str, "latent_dim": int, "hidden": list}
TRAIN_KEYS = {"epochs": int, "batch_size": int, "lr": float}
JUDGE_KEYS = {
    "epochs": int,
    "batch_size": int,
    "lr": float,
    "seed": int,
    "checkpoint": str,
    "attribute": str,
    "arch": str,
}
FORGET_KEYS = {"requests": list, "manifest": str}
EVALUATE_KEYS = {"samples": int, "seed": int, "batch_size": int, "relearn_steps": int}
METHOD_KEYS = {"method": str, "label": str, **option_types()}  # and every method option


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
        found = len(problems)
        entry = check_fields(entry, METHOD_KEYS, where, problems)
        typed = len(problems) == found  # ranges are checked on values of the right type only
        name = entry.get("method")
        if name not in METHOD_NAMES or name == "retrain":
            known = ", ".join(m for m in METHOD_NAMES if m != "retrain")
            extra = " (retrain always runs, as the reference)" if name == "retrain" else ""
            problems.append(f"{where}: unknown method {name!r}; use one of {known}{extra}")
            continue
        options = {k: v for k, v in entry.items() if k not in ("method", "label")}
        if isinstance(options.get("judge"), str) and options["judge"]:  # uno's, as the file's
            options["judge"] = _resolve(base, options["judge"])
        try:
            if typed:
                check_options(name, options)
        except UsageError as e:
            problems.append(f"{where}: {e}")  # named as the file names it: `lr`, not `--lr`
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
            image_size=ds.get("image_size", 0),
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


def forgetting(exp: Experiment, target: Target) -> Experiment:
    """The experiment with its requests replaced by one that forgets `target` (digits or an
    attribute): one file serves every target of a dataset, sharing its originals and judge."""
    if target.kind == "samples":
        raise UsageError(
            "samples: name a class:DIGIT or attribute:NAME; samples need a manifest", "forget"
        )
    name = f"forget-{target.kind}-{'-'.join(map(str, target.values))}"
    return dataclasses.replace(exp, requests=[Request(name, target.kind, target.values)])
