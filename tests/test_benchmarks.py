"""Every file in benchmarks/ loads, and each script runs on a tiny model."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from unlearn_cli.errors import CheckpointError
from unlearn_cli.workflows.experiment import load_experiment

CONFIGS = Path(__file__).parent.parent / "benchmarks"
EXPERIMENTS = sorted(  # every file that `unlearn compare` runs
    p.name for p in CONFIGS.glob("*.yaml") if p.read_text().startswith("# unlearn compare ")
)


@pytest.mark.parametrize("name", sorted(p.name for p in CONFIGS.glob("*.yaml")))
def test_every_file_starts_with_the_command_that_uses_it(name):
    first = (CONFIGS / name).read_text().splitlines()[0]
    assert first.startswith("# unlearn "), first


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiments_load(name):
    exp = load_experiment(CONFIGS / name)
    assert exp.requests and exp.methods and exp.seeds
    assert f"unlearn compare benchmarks/{name}" in (CONFIGS / name).read_text()


def test_the_paper_experiment_is_mnist138_forgetting_one_over_three_seeds():
    exp = load_experiment(CONFIGS / "mnist138.yaml")
    assert exp.dataset.classes == (1, 3, 8) and exp.seeds == [0, 1, 2]
    assert [(r.selector, r.values) for r in exp.requests] == [("class", (1,))]
    assert {m.method for m in exp.methods} == {"ascent", "fu", "surgery", "redirect"}
    assert exp.evaluate["samples"] == 10000


def report(rows: dict[str, dict[str, list[float]]]) -> dict:
    """A `compare --json` report with the given per-seed values."""

    def cells(values):
        return {k: {"values": v} for k, v in values.items()}

    return {
        "dataset": "mnist digits 1,3,8 (embedded)",
        "target": "class:3",
        "rows": [{"label": k, "title": k, "cells": cells(v)} for k, v in rows.items()],
    }


def test_bar_table_marks_every_miss_against_the_same_seed(tmp_path, capsys):
    import runpy

    retrain = {
        "privacy.fratio": [0.0, 0.1],
        "utility.precision": [0.8, 0.7],
        "utility.fid": [10.0, 20.0],
        "utility.retain_elbo": [100.0, 100.0],
    }
    method = {
        "privacy.fratio": [0.02, 0.1],  # within 0.02 on both seeds
        "utility.precision": [0.72, 0.62],  # 0.9 x 0.7 = 0.63: seed 1 misses
        "utility.fid": [12.0, 24.0],  # exactly 1.2x: passes
        "utility.retain_elbo": [111.0, 105.0],  # seed 0 misses
        "cost.percent_of_retrain": [4.0, 6.0],
    }
    path = tmp_path / "r.json"
    path.write_text(json.dumps(report({"RETRAIN": retrain, "OURS": method})))
    script = runpy.run_path(str(CONFIGS / "bar_table.py"))
    script["main"]([str(path)])
    lines = capsys.readouterr().out.splitlines()
    ours = next(line for line in lines if "| OURS |" in line)
    assert ours.split(" | ")[2:] == [
        "0.060 (0.057)",
        "0.670 (0.071) ✗",
        "-",
        "18.0 (8.5)",
        "-",
        "108.0 (4.2) ✗",
        "5.000 (1.414) |",
    ]


def test_the_stream_script_runs_batch_after_batch_and_ends_with_the_retrained_model(
    tiny_vae, tiny_judge, tmp_path
):
    """benchmarks/stream.py on the tiny model: 3 batches of 5 samples, the digit 8 asked
    for with the second; every batch chains on the previous checkpoint."""
    import subprocess
    import sys

    from unlearn_cli.engine.checkpoint import load_checkpoint

    out = tmp_path / "stream"
    args = ["--out", out, "--original", tiny_vae, "--judge", tiny_judge, "--batches", "3"]
    args += ["--per-batch", "5", "--class-at", "2", "--digit", "8", "--samples", "60"]
    run = subprocess.run(
        [sys.executable, str(CONFIGS / "stream.py"), *map(str, args), "--device", "cpu"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    rows = json.loads((out / "stream.json").read_text())
    assert [r["model"] for r in rows] == [*(f"after batch {b}" for b in (1, 2, 3)), "retrained"]
    assert [r["forgotten_samples"] for r in rows] == [5, 10, 15, 15]
    assert rows[0]["fratio"] is None and rows[1]["fratio"] is not None  # asked with batch 2
    (path,) = out.glob("after-batch-3-*.safetensors")  # keyed by its parent and settings
    third = load_checkpoint(path)
    assert [len(e["requests"]) for e in third.lineage] == [1, 2, 1]  # one operation per batch
    compounded = math.prod(1 + e["retain_drift"] for e in third.lineage) - 1
    assert rows[2]["drift"] == pytest.approx(compounded, abs=1e-6)
    assert "| after batch 3 |" in run.stdout


def test_forget_region_splits_each_models_fratio_into_inside_and_outside(
    tiny_vae, tiny_judge, tmp_path, capsys
):
    """benchmarks/forget_region.py on the tiny model: one table row per report row, and
    each fratio is the inside and outside fratios weighted by the forget region's share."""
    import runpy

    path = tmp_path / "r.json"
    first = tmp_path / "seed-0.safetensors"  # the report's first seed's models, never written
    rows = [{"title": t, "models": [str(first), str(tiny_vae)]} for t in ("BEFORE", "OURS")]
    path.write_text(json.dumps({"seeds": [0, 5], "rows": [*rows, {"title": "RETRAIN"}]}))
    script = runpy.run_path(str(CONFIGS / "forget_region.py"))
    args = [str(path), "--judge", str(tiny_judge), "--class", "8", "--samples", "400"]
    with pytest.raises(CheckpointError, match="seed-0.safetensors: no such file"):
        script["main"](args)  # without --report-seed: the first seed
    with pytest.raises(SystemExit):
        script["main"]([*args, "--report-seed", "7"])  # not in the report
    capsys.readouterr()
    script["main"]([*args, "--report-seed", "5"])
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(" | ")[0] for line in lines[2:]] == ["| BEFORE", "| OURS"]
    for line in lines[2:]:
        region, fratio, inside, outside = line.strip("| ").split(" | ")[1:]
        parts = [(float(region), inside), (1 - float(region), outside)]
        mixed = sum(weight * float(value) for weight, value in parts if value != "-")
        assert float(fratio) == pytest.approx(mixed, abs=2e-3)
    assert lines[2].split(" | ")[1:] == lines[3].split(" | ")[1:]  # same model, same z


def test_attack_reports_relearning_and_the_floor_for_every_row(tiny_vae, tiny_judge, capsys):
    """benchmarks/attack.py on the tiny model standing for every row and both RETRAIN seeds:
    the floor of a model against itself is 0, so every floored metric is within it, and the
    relearning attack gives the model what it gives the reference."""
    import runpy

    report = {
        "target": "class:1",
        "seeds": [0, 1],
        "rows": [
            {"label": label, "title": label, "models": [str(tiny_vae)] * 2}
            for label in ("BEFORE", "OURS", "RETRAIN")
        ],
    }
    path = Path(str(tiny_vae)).parent / "attack-report.json"
    path.write_text(json.dumps(report))
    script = runpy.run_path(str(CONFIGS / "attack.py"))
    out = script["main"](
        [str(path), "--judge", str(tiny_judge), "--relearn-steps", "2"] + ["--samples", "60"]
    )
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| OURS")]
    assert len(out) == 4 and len(lines) == 2  # OURS and RETRAIN, two seeds each; no BEFORE
    for entry in out:
        privacy = entry["result"]["privacy"]
        assert privacy["relearn_gap"] == 0.0
        assert privacy["relearn_fratio_benign"] == privacy["relearn_fratio_benign_reference"]
        assert set(entry["result"]["floor"]["within"]) >= {"fratio", "fid", "retain_elbo"}
    assert lines[0].endswith("| fratio, fid, precision, retain_elbo, fid_reference |")
