"""Every file in benchmarks/ loads, and each script runs on a tiny model."""

from __future__ import annotations

import ast
import json
import math
import re
import runpy
import subprocess
from pathlib import Path

import pytest
import torch

from unlearn_cli import api
from unlearn_cli.errors import CheckpointError
from unlearn_cli.workflows.experiment import load_experiment

REPO = Path(__file__).parent.parent
CONFIGS = REPO / "benchmarks"
SCRIPTS = sorted(p.name for p in CONFIGS.glob("*.py"))
SHELL = sorted(p.name for p in CONFIGS.glob("*.sh"))


def test_the_paper_experiment_is_mnist138_forgetting_one_over_three_seeds():
    exp = load_experiment(CONFIGS / "mnist138.yaml")
    assert exp.dataset.classes == (1, 3, 8) and exp.seeds == [0, 1, 2]
    assert [(r.selector, r.values) for r in exp.requests] == [("class", (1,))]
    assert {m.method for m in exp.methods} == {"ascent", "fu", "surgery", "redirect", "uno"}
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
    # ≈: within the floor, RETRAIN's seed-to-seed difference (fratio 0.1, precision 0.1,
    # FID 10, retain -ELBO 0); a cost has none
    assert ours.split(" | ")[2:] == [
        "0.060 (0.057) ≈",
        "0.670 (0.071) ✗ ≈",
        "-",
        "18.0 (8.5) ≈",
        "-",
        "108.0 (4.2) ✗",
        "5.000 (1.414) |",
    ]


def test_the_stream_script_runs_batch_after_batch_and_ends_with_the_retrained_model(
    tiny_vae, tiny_judge, tmp_path
):
    """benchmarks/stream.py on the tiny model: 3 batches of 5 samples, the digit 8 asked
    for with the second; every batch chains on the previous checkpoint. Gradient ascent, the
    quickest method, stands in for the default: what is tested is the chaining."""
    out = tmp_path / "stream"
    args = ["--out", out, "--original", tiny_vae, "--judge", tiny_judge, "--batches", 3]
    args += ["--per-batch", 5, "--class-at", 2, "--digit", 8, "--samples", 60]
    args += ["--method", "ascent", "--device", "cpu"]
    runpy.run_path(str(CONFIGS / "stream.py"))["main"](list(map(str, args)))
    rows = json.loads((out / "stream.json").read_text())
    assert [r["model"] for r in rows] == [*(f"after batch {b}" for b in (1, 2, 3)), "retrained"]
    assert [r["forgotten_samples"] for r in rows] == [5, 10, 15, 15]
    assert rows[0]["fratio"] is None and rows[1]["fratio"] is not None  # asked with batch 2
    (path,) = out.glob("after-batch-3-*.safetensors")  # keyed by its parent and settings
    third = api.load_checkpoint(path)
    assert [len(e["requests"]) for e in third.lineage] == [1, 2, 1]  # one operation per batch
    assert {e["method"] for e in third.lineage} == {"ascent"}
    compounded = math.prod(1 + e["retain_drift"] for e in third.lineage) - 1
    assert rows[2]["drift"] == pytest.approx(compounded, abs=1e-6)
    # the digit, asked for with batch 2, is re-checked by batch 3's forget, and only then
    (recheck,) = third.lineage[-1]["recheck"]
    assert recheck["id"] == "digit-8" and rows[2]["comeback"] == recheck["comeback"]
    assert [r["comeback"] for r in (rows[0], rows[1], rows[3])] == [None, None, None]
    (retrained,) = out.glob("retrain-*.safetensors")  # once, without all of it
    (entry,) = api.load_checkpoint(retrained).lineage
    eights = int((api.training_set(third.dataset).labels == 8).sum())
    assert (entry["method"], entry["forgotten_count"]) == ("retrain", 15 + eights)


def test_forget_region_splits_each_models_fratio_into_inside_and_outside(
    tiny_vae, tiny_judge, tmp_path, capsys
):
    """benchmarks/forget_region.py on the tiny model: one table row per report row, and
    each fratio is the inside and outside fratios weighted by the forget region's share."""
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


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(line, dotted name) of every import of the package in a script, at any depth; `from
    unlearn_cli import api` names `unlearn_cli.api`."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module == "unlearn_cli":
            found += [(node.lineno, f"unlearn_cli.{alias.name}") for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append((node.lineno, node.module or ""))
    return [(line, name) for line, name in found if name.split(".")[0] == "unlearn_cli"]


@pytest.mark.parametrize("name", SCRIPTS)
def test_scripts_use_the_public_api_alone(name):
    """A lab script drives the CLI or `unlearn_cli.api`, never the modules below it."""
    private = [
        f"{name}:{line} {m}" for line, m in imports_of(CONFIGS / name) if m != "unlearn_cli.api"
    ]
    assert private == []
    tree = ast.parse((CONFIGS / name).read_text())
    names = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module == "unlearn_cli.api"
        for alias in node.names
    }
    assert names <= set(api.__all__), sorted(names - set(api.__all__))


def test_the_import_check_sees_every_kind_of_import(tmp_path):
    path = tmp_path / "s.py"
    path.write_text(
        "import unlearn_cli.engine\nfrom unlearn_cli import api, cli\n"
        "def f():\n    from unlearn_cli.methods.redirect import encode_all\n"
    )
    assert [m for _, m in imports_of(path)] == [
        "unlearn_cli.engine",
        "unlearn_cli.api",
        "unlearn_cli.cli",
        "unlearn_cli.methods.redirect",
    ]


@pytest.mark.parametrize("name", SHELL)
def test_shell_scripts_parse_and_name_files_that_exist(name):
    """bash -n, every config and script the file names is in the repository, and every flag it
    gives a benchmark script is one that script's parser declares (cuda_check.sh needs a GPU:
    only this much of it is checked here)."""
    text = (CONFIGS / name).read_text()
    run = subprocess.run(["bash", "-n", str(CONFIGS / name)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    named = set(re.findall(r"(?:benchmarks|sample_configs)/[\w./-]+\.(?:yaml|py|sh)", text))
    assert named, "names no config or script"
    assert sorted(p for p in named if not (REPO / p).is_file()) == []
    for script, flags in re.findall(r"(benchmarks/\w+\.py)([^\n]*)", text):
        declared = (REPO / script).read_text()
        for flag in re.findall(r"(?<![\w-])--[\w-]+", flags):
            assert f'"{flag}"' in declared, f"{name}: {script} has no {flag}"


def test_memorisation_reports_the_original_the_forgotten_and_the_retrained_model(tmp_path, capsys):
    """benchmarks/memorisation.py at its smallest: 100 training images, 1 epoch, 5 forgotten,
    one shadow and U-LiRA's 8 references; a ten-digit judge trained here for a moment."""
    cfg = api.JudgeConfig(arch="allcnn", channels=1, image_size=28, num_classes=10, width=8)
    tiny = api.TrainConfig(epochs=1, batch_size=32, seed=0)
    judge = api.train_judge(
        api.DatasetSpec(name="mnist", limit=300), cfg, tiny, torch.device("cpu")
    )
    judge_path = api.save_checkpoint(judge, tmp_path / "judge.safetensors")
    out = tmp_path / "mem"
    args = ["--out", out, "--train-size", 100, "--epochs", 1, "--forget", 5, "--shadows", 1]
    args += ["--samples", 60, "--judge", judge_path, "--device", "cpu"]
    script = runpy.run_path(str(CONFIGS / "memorisation.py"))
    with pytest.raises(SystemExit):  # argparse's usage error, before any training
        script["main"](list(map(str, [*args, "--references", 7])))
    assert "--references 7: U-LiRA fits each sample's null from 8" in capsys.readouterr().err
    assert not out.exists()
    script["main"](list(map(str, [*args, "--relearn-steps", 2])))
    assert "| relearned MIA AUC | benign relearned MIA AUC |" in capsys.readouterr().out
    for name in ("original", "redirect", "retrain"):
        report = json.loads((out / f"{name}.json").read_text())
        for key in ("relearn_mia_auc_fewshot", "relearn_mia_auc_benign"):
            assert 0.0 <= report["privacy"][key] <= 1.0
        assert report["target"] == "samples" and report["samples"] == 60
        for key in ("mia_auc", "mia_tpr_at_1fpr", "mia_calibrated_auc"):  # shadows calibrate
            assert 0.0 <= report["privacy"][key] <= 1.0
        privacy = report["privacy"]
        assert (privacy["ulira_references"], privacy["ulira_forgotten"]) == (8, 5)
        for key in ("ulira_auc", "ulira_beyond_95", "ulira_told_apart", "ulira_tpr_at_1fpr"):
            assert 0.0 <= privacy[key] <= 1.0
        assert report["utility"]["fid"] is not None  # the judge was used
    (forgot,) = out.glob("forget-redirect-*.safetensors")  # keyed by its parent and settings
    (retrained,) = out.glob("retrain-*.safetensors")
    for path in (forgot, retrained):
        last = api.load_checkpoint(path).lineage[-1]
        (request,) = last["requests"]
        assert len(request["indices"]) == 5 and max(request["indices"]) < 100  # training images
        assert (last["forgotten_count"], last["retain_count"]) == (5, 95)
    shadow = api.load_checkpoint(out / "shadow-0.safetensors")
    assert shadow.num_samples == 100
    references = [api.load_checkpoint(p) for p in sorted(out.glob("reference-*.safetensors"))]
    assert len(references) == 8 and len({r.sha256 for r in references}) == 8
    seeds = {r.lineage[-1]["seed"] for r in references}
    assert seeds == set(range(1, 9))  # each its own seed; the retrained row keeps seed 0
    assert {r.lineage[-1]["forgotten_count"] for r in references} == {5}


def test_scaling_prints_one_json_row_per_preset(monkeypatch, capsys):
    """benchmarks/scaling.py on a few synthetic images: one row per preset VAE, its throughput
    the images over the seconds."""
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)  # it would record 0 seconds
    script = runpy.run_path(str(CONFIGS / "scaling.py"))
    script["main"](["--device", "cpu", "--mnist-images", "256", "--celeba-images", "16"])
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["model"], r["images"]) for r in rows] == [
        ("mnist preset VAE", 256),
        ("celeba preset VAE", 16),
    ]
    for row in rows:
        assert row["processes"] == 1 and row["device"] == "cpu" and row["seconds"] > 0
        assert row["images_per_second"] == pytest.approx(row["images"] / row["seconds"], abs=0.1)


def test_adam_cosine_finds_sgd_on_the_normal_plane_and_adam_off_it(tiny_vae, capsys):
    """benchmarks/adam_cosine.py on the tiny model: SGD's step is -lr * d, orthogonal to g_r;
    Adam's is not along d. Both see the same batches and the same ascent direction."""
    script = runpy.run_path(str(CONFIGS / "adam_cosine.py"))
    ckpt = api.load_checkpoint(tiny_vae, "vae")
    data = api.training_set(ckpt.dataset)
    forget, retain = api.split_by_ids(data, data.ids[data.labels == 1])
    for scope in ("decoder", "all"):
        sgd = script["measure"](ckpt, forget, retain, scope, "sgd", lr=5e-4, batch_size=16)
        adam = script["measure"](ckpt, forget, retain, scope, "adam", lr=5e-4, batch_size=16)
        assert len(sgd) == len(adam) == math.ceil(len(forget) / 16)  # one pass over D_f
        assert all(abs(to_g_r) < 1e-5 and to_d > 1 - 1e-6 for to_g_r, to_d, _ in sgd)
        assert all(to_d < 0.99 for _, to_d, _ in adam)
        assert sgd[0][2] == adam[0][2]  # the first step's unprojected direction: no step yet
    script["main"](str(tiny_vae))
    assert len(capsys.readouterr().out.splitlines()) == 1 + 4  # the data, each scope x optimizer


def test_seed_table_prints_every_seed_of_the_chosen_rows(tmp_path, capsys):
    path = tmp_path / "r.json"
    rows = {
        "OURS": {"privacy.fratio": [0.01, 0.02], "cost.percent_of_retrain": [2.5, 3.25]},
        "other": {"privacy.fratio": [0.5, 0.6]},
    }
    path.write_text(json.dumps(report(rows)))
    runpy.run_path(str(CONFIGS / "seed_table.py"))["main"]([str(path), "--rows", "OURS"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[2:] == ["| class:3 | OURS | 0.010, 0.020 | - | - | - | 2.50, 3.25 |"]


def test_growth_times_each_request_and_reads_a_sample_of_a_class(tiny_vae, monkeypatch, capsys):
    """benchmarks/growth.py on the tiny VAE (and a few synthetic images through the conv VAE):
    one row per request, the images read at most those forgotten, fewer for a class once the
    bank is a part of D_r and step 3's glance a part of the class."""
    from unlearn_cli.methods import membership, redirect

    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)  # it would record 0 seconds
    monkeypatch.setattr(redirect, "BANK_SIZE", 64)  # a bank a part of the tiny D_r
    monkeypatch.setattr(membership, "GLANCE", 16)  # a glance a part of the tiny class
    script = runpy.run_path(str(CONFIGS / "growth.py"))
    script["main"]([str(tiny_vae), "--synthetic-celeba", "96", "--train-images", "32"])
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["request"] for r in rows] == [
        "50 samples",
        "a tenth of class 1",
        "class 1",
        "classes 1 and 3",
        "a random 42%",
    ]
    for row in rows:
        assert 0 < row["forget_images_read"] <= row["forget_images"]
        assert row["forget_seconds"] > 0 and row["retrain_seconds_estimate"] > 0
    one_class = rows[2]
    assert one_class["forget_images_read"] < one_class["forget_images"]


def test_memorisation_reads_a_methods_settings_as_yaml_values():
    script = runpy.run_path(str(CONFIGS / "memorisation.py"))
    parse = script["method_settings"]
    assert parse("redirect") == ("redirect", {})
    assert parse("redirect:params=all,match_steps=400") == (
        "redirect",
        {"params": "all", "match_steps": 400},
    )
    assert parse("surgery:lr=5e-4") == ("surgery", {"lr": 5e-4})
