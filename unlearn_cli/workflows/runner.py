"""The caching runner of an experiment: every artefact (original, judge, unlearned model,
metrics) is kept in the output directory under a key derived from what it depends on, so an
interrupted experiment resumes where it stopped and adding a method reuses the originals
already trained.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import torch

from unlearn_cli import __version__, defaults, distributed
from unlearn_cli.data.requests import Request
from unlearn_cli.data.spec import folder_spec
from unlearn_cli.engine.checkpoint import Checkpoint, atomic_write, load_checkpoint, save_checkpoint
from unlearn_cli.engine.files import json_text
from unlearn_cli.engine.progress import Progress
from unlearn_cli.engine.sources import code_digest, training_digest
from unlearn_cli.workflows.experiment import Experiment, MethodRun
from unlearn_cli.workflows.targets import Target

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
    its fully resolved settings `cfg`, the tool's version and the digest of the code the forget
    runs (`engine.sources`) included, so a changed default, constant or step, or a new
    release, never reuses an old run."""
    named = [r.to_dict() for r in requests]
    code = method_digest(method)
    return key(method, parent, named, dataclasses.asdict(cfg), __version__, code)


def method_digest(method: str) -> str:
    """The digest of the code a forget with the registered `method` runs (`engine.sources`)."""
    from unlearn_cli.methods.settings import METHODS

    return code_digest(METHODS[method].module)


class Runner:
    """Runs an experiment's artefacts in order, reusing whatever the cache already holds."""

    def __init__(self, exp: Experiment, device: torch.device, progress: Progress):
        if exp.dataset.name == "folder":  # its classes, channels and size, from the folder now
            exp = dataclasses.replace(exp, dataset=folder_spec(exp.dataset))
        self.exp, self.device, self.progress = exp, device, progress
        from unlearn_cli.workflows.evaluate import Memo

        exp.out_dir.mkdir(parents=True, exist_ok=True)
        self.reused = 0
        self.made = 0
        # the code as it is at the start: an edit during a long run keys nothing it made
        training_digest()
        for name in {"retrain", *(run.method for run in exp.methods)}:
            method_digest(name)
        self.memo = Memo()  # judge features of each retraining's samples, for every row

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
        named = [model_cfg.to_dict()] if j.get("arch") else []
        k = distributed.broadcast(
            key("judge", spec.to_dict(), cfg.to_dict(), *named, training_digest())
        )
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
        parts = (self.exp.dataset.to_dict(), model_cfg.to_dict(), cfg.to_dict())
        k = distributed.broadcast(key("original", *parts, training_digest()))  # rank 0's
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
        # rank 0's key: a rank whose files differ (line endings) must not look for another file
        k = distributed.broadcast(forget_key(run.method, original_key, self.exp.requests, cfg))

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
        from unlearn_cli.workflows.evaluate import evaluate

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
