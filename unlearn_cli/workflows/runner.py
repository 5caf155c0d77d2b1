"""The caching runner of an experiment: every artefact (original, judge, unlearned model,
metrics) is kept in the output directory under a key derived from what it depends on, so an
interrupted experiment resumes where it stopped and adding a method reuses the originals
already trained.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import hashlib
import importlib.util
import json
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from unlearn_cli import __version__, defaults, distributed
from unlearn_cli.data.requests import Request
from unlearn_cli.data.spec import folder_spec
from unlearn_cli.engine.checkpoint import Checkpoint, atomic_write, load_checkpoint, save_checkpoint
from unlearn_cli.engine.files import json_text
from unlearn_cli.engine.progress import Progress
from unlearn_cli.workflows.experiment import Experiment, MethodRun
from unlearn_cli.workflows.targets import Target

if TYPE_CHECKING:
    from unlearn_cli.workflows.evaluate import Memo

METRICS_VERSION = 3  # what evaluate() reports; raise it when a metric is added or changed


def slug(label: str) -> str:
    """A file-name-safe form of a row label."""
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in label).strip("-")


def key(*parts) -> str:
    """A short fingerprint of JSON-able parts: the cache key of an artefact."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def forget_key(method: str, parent: str, requests: list[Request], cfg) -> str:
    """The cache key of forgetting `requests` from the checkpoint keyed `parent` with `method`:
    its fully resolved settings `cfg`, the code's version and the digest of the method's source
    included, so a changed default, constant or step, or a new release, never reuses an old
    run."""
    from unlearn_cli.methods import get_method

    named = [r.to_dict() for r in requests]
    code = source_digest(type(get_method(method)).__module__)
    return key(method, parent, named, dataclasses.asdict(cfg), __version__, code)


def imported(module: str) -> list[str]:
    """The unlearn_cli modules that `module`'s source imports at its top level (imports
    inside functions or under `if TYPE_CHECKING` are left out), as dotted names."""
    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.origin is not None  # one of the package's own modules
    found = []
    for node in ast.parse(Path(spec.origin).read_text()).body:
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.append(node.module)  # and each name that is a submodule of it
            found += [f"{node.module}.{alias.name}" for alias in node.names]
    return [m for m in found if m.split(".")[0] == "unlearn_cli" and _is_module(m)]


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # a name imported from a module, not a module
        return False


def sources(module: str) -> set[str]:
    """`module`, the models' package and every unlearn_cli module they import, transitively."""
    seen, todo = set(), [module, "unlearn_cli.models"]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo += imported(name)
    return seen


@functools.cache
def source_digest(module: str) -> str:
    """sha256 over the source files of `sources(module)`: what a method's result depends on,
    and nothing it does not (retraining's digest does not move when another method's file
    changes)."""
    digest = hashlib.sha256()
    for name in sorted(sources(module)):
        origin = importlib.util.find_spec(name).origin  # type: ignore[union-attr]  # found above
        digest.update(name.encode() + b"\0" + Path(str(origin)).read_bytes())
    return digest.hexdigest()[:16]


class Runner:
    """Runs an experiment's artefacts in order, reusing whatever the cache already holds."""

    def __init__(self, exp: Experiment, device: torch.device, progress: Progress):
        if exp.dataset.name == "folder":  # its classes, channels and size, from the folder now
            exp = dataclasses.replace(exp, dataset=folder_spec(exp.dataset))
        self.exp, self.device, self.progress = exp, device, progress
        exp.out_dir.mkdir(parents=True, exist_ok=True)
        self.reused = 0
        self.made = 0
        self.memo: Memo | None = None  # judge features of a retraining's samples, for every row

    def cached(self, name: str, make) -> Checkpoint:
        path = self.exp.out_dir / name
        if distributed.broadcast(path.exists()):  # rank 0's view: every rank takes one branch
            self.reused += 1
            self.progress.log(f"reusing {path}")
            return load_checkpoint(path)
        ckpt = make()
        save_checkpoint(ckpt, path)  # rank 0 writes; under torchrun the others wait for it
        distributed.barrier()
        self.made += 1
        return load_checkpoint(path)

    def judge(self) -> tuple[Checkpoint, str]:
        from unlearn_cli.engine.train import TrainConfig, judge_config, train_judge

        j = self.exp.judge
        if "checkpoint" in j:
            ckpt = load_checkpoint(j["checkpoint"], "judge")
            assert ckpt.sha256 is not None  # load_checkpoint sets it
            return ckpt, ckpt.sha256
        spec = dataclasses.replace(self.exp.dataset, attribute=j.get("attribute"))
        cfg = TrainConfig.of(j, "judge")
        model_cfg = judge_config(spec, arch=j.get("arch"))
        named = [model_cfg.to_dict()] if j.get("arch") else []  # earlier keys stay valid
        k = key("judge", spec.to_dict(), cfg.to_dict(), *named)
        return self.cached(
            f"judge-{k}.safetensors",
            lambda: train_judge(spec, model_cfg, cfg, self.device, self.progress),
        ), k

    def original(self, seed: int) -> tuple[Checkpoint, str]:
        from unlearn_cli.engine.train import TrainConfig, train_vae, vae_config

        if self.exp.original is not None:
            ckpt = load_checkpoint(self.exp.original, "vae")
            assert ckpt.sha256 is not None  # load_checkpoint sets it
            return ckpt, ckpt.sha256
        cfg = TrainConfig(**self.exp.train, seed=seed)
        model_cfg = vae_config(self.exp.dataset, **self.exp.model)
        k = key("original", self.exp.dataset.to_dict(), model_cfg.to_dict(), cfg.to_dict())
        return self.cached(
            f"original-s{seed}-{k}.safetensors",
            lambda: train_vae(self.exp.dataset, model_cfg, cfg, self.device, self.progress),
        ), k

    def unlearned(
        self,
        original: Checkpoint,
        original_key: str,
        run: MethodRun,
        seed: int,
        judge: Checkpoint | None = None,
    ) -> tuple[Checkpoint, str]:
        """The run's unlearned model and its key; a method with a `judge` setting (one whose
        loss holds a classifier, as uno's) that names none gets `judge`, the experiment's."""
        from unlearn_cli.methods import configure, get_method
        from unlearn_cli.methods.settings import settings_of
        from unlearn_cli.workflows.forget import plan_forget, run_forget

        options = dict(run.options)
        if run.method != "retrain":
            options["seed"] = seed  # retrain keeps the original's own seed
        wants_judge = "judge" in settings_of(run.method) and not options.get("judge")
        if wants_judge and judge is not None:
            options["judge"] = str(judge.path)
        method = get_method(run.method)
        cfg = configure(method, original, options)
        k = forget_key(run.method, original_key, self.exp.requests, cfg)

        def make():
            plan = plan_forget(original, self.exp.requests)
            for line in plan.notes:
                self.progress.log(line)
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
        target: Target | None,
        requests: list[Request] | None = None,
        reference: tuple[Checkpoint, str] | None = None,
    ) -> dict:
        """evaluate() of one checkpoint; `requests` score a model whose lineage names none,
        `reference` (the RETRAIN checkpoint and its key) gives FID against retraining."""
        from unlearn_cli.workflows.evaluate import Memo, evaluate

        self.memo = self.memo or Memo()
        ev = defaults.evaluation(self.exp.evaluate)
        named = [r.to_dict() for r in requests] if requests is not None else None
        ref_key = reference[1] if reference is not None else None
        tgt = None if target is None else str(target)
        k = key(ckpt_key, judge_key, ev, tgt, named, ref_key, __version__, METRICS_VERSION)
        path = self.exp.out_dir / f"metrics-{k}.json"
        if distributed.broadcast(path.exists()):  # rank 0's view: every rank takes one branch
            cached = json.loads(path.read_text()) if distributed.is_main() else None
            return distributed.broadcast(cached)
        result = evaluate(
            ckpt,
            judge,
            target=target,
            device=self.device,
            progress=self.progress,
            root=self.exp.dataset.root,
            requests=requests,
            reference=reference[0] if reference is not None else None,
            memo=self.memo,
            **ev,
        )
        atomic_write(path, lambda tmp: Path(tmp).write_text(json_text(result)))
        distributed.barrier()
        return result
