"""Whole experiments in the layout of the paper's Table 1: train (or reuse) the original VAE and
the judge, run every method and the retrain reference for each seed, evaluate each run (each
artefact cached by `runner.Runner`); or tabulate existing checkpoints.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from unlearn_cli.data.requests import Request
from unlearn_cli.engine.checkpoint import Checkpoint, load_checkpoint
from unlearn_cli.engine.progress import NullProgress, Progress
from unlearn_cli.workflows.experiment import Experiment, MethodRun
from unlearn_cli.workflows.runner import Runner, slug
from unlearn_cli.workflows.tables import mark_best, mark_floor, mark_misses, summarise
from unlearn_cli.workflows.targets import Target, default_target


def target_of(requests: list[Request]) -> Target | None:
    """What fratio counts for these requests; None for individual samples, which the
    membership-inference AUC scores instead."""
    target = default_target(requests)
    return None if target is None or target.kind == "samples" else target


def run_title(run: MethodRun, original: Checkpoint) -> str:
    """The method's row label for the run's resolved settings."""
    from unlearn_cli.methods import configure, get_method

    method = get_method(run.method)
    return method.title_for(configure(method, original, dict(run.options)))


def run_experiment(exp: Experiment, device: torch.device, progress: Progress | None = None) -> dict:
    """Every run of the experiment, evaluated; returns {"rows": ..., "runs": ...}."""
    from unlearn_cli.workflows.grids import write_grid

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
                else runner.unlearned(original, original_key, run, seed, judge)
            )
            titles[run.label] = run.label if run.label != run.method else run_title(run, original)
            results[run.label] = runner.metrics(
                child, child_key, judge, judge_key, target, reference=retrain
            )
            grid = exp.out_dir / f"grid-{slug(run.label)}-s{seed}-{child_key}.png"
            if not grid.exists():
                reference = retrain[0] if run.method != "retrain" else None
                write_grid(grid, child, original, device, reference, titles[run.label])
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
    mark_misses(rows)
    floor = mark_floor(rows)
    return {
        "experiment": exp.name,
        "dataset": exp.dataset.describe(),
        "target": None if target is None else str(target),
        "seeds": exp.seeds,
        "device": str(device),
        "judge": judge.metrics.get("test_accuracy"),
        "out_dir": str(exp.out_dir),
        "reused": runner.reused,
        "computed": runner.made,
        "wall_seconds": round(time.perf_counter() - start, 1),
        "relearn_steps": exp.evaluate.get("relearn_steps"),
        "floor": floor,  # RETRAIN's seed-to-seed spread of each column
        "rows": rows,
    }


def tabulate_checkpoints(
    paths: list[Path],
    judge: Checkpoint,
    target: Target | None,
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
    mark_misses(rows)
    return {
        "experiment": None,
        "target": None if target is None else str(target),
        "device": str(device),
        "judge": judge.metrics.get("test_accuracy"),
        "rows": rows,
    }
