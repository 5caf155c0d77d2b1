"""`unlearn forget` through the CLI: outputs, idempotent batches, receipts and bad input."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from conftest import parse_json

from unlearn_cli.engine.checkpoint import load_checkpoint, read_metadata

MANIFEST = """\
requests:
  - id: gdpr-1
    class: 1
    received: 2026-11-02
  - id: gdpr-2
    indices: [{index}]
"""


@pytest.fixture
def model(tiny_vae, tmp_path):
    path = tmp_path / "model.safetensors"
    shutil.copy(tiny_vae, path)
    return path


@pytest.fixture
def manifest(model, tmp_path):
    ckpt = load_checkpoint(model, "vae")
    from unlearn_cli.data.requests import training_set

    data = training_set(ckpt.dataset)
    a_three = int(data.ids[data.labels == 3][0])
    path = tmp_path / "requests.yaml"
    path.write_text(MANIFEST.format(index=a_three))
    return path


def files(folder):
    return sorted(p.name for p in folder.iterdir())


def test_forget_writes_a_child_with_lineage_and_leaves_the_input_alone(
    cli, model, manifest, tmp_path
):
    before = model.read_bytes()
    ledger = tmp_path / "receipts.jsonl"
    result = cli("forget", model, "--manifest", manifest, "--ledger", ledger, "--json")
    summary = parse_json(result)
    assert model.read_bytes() == before
    child = tmp_path / "model-forget-redirect.safetensors"
    assert summary["out"] == str(child) and child.exists()
    meta = read_metadata(child)
    (entry,) = meta["lineage"]
    assert [r["id"] for r in entry["requests"]] == ["gdpr-1", "gdpr-2"]
    assert entry["forgotten_count"] == summary["forget_samples"]
    assert entry["method"] == "redirect" and entry["hyperparameters"]["lr"] == 1.5e-4
    assert entry["hyperparameters"]["retain_epochs"] == 0.1  # step 0: a tenth of a pass over D_r
    assert entry["hyperparameters"]["match_steps"] == 1000
    assert entry["hyperparameters"]["npo_weight"] == 10.0  # the push away from D_f
    assert entry["parent_sha256"] == load_checkpoint(model).sha256
    assert entry["wall_seconds"] > 0 and len(entry["forgotten_sha256"]) == 64
    receipts = [json.loads(line) for line in ledger.read_text().splitlines()]
    assert [r["request_id"] for r in receipts] == ["gdpr-1", "gdpr-2"]
    assert receipts[0]["child_sha256"] == load_checkpoint(child).sha256
    assert receipts[1]["selected"] == 1


def test_each_forget_records_its_retain_drift_and_warns_past_10_percent(cli, model, tmp_path):
    """A forget measures the retained data's loss before and after; the lineage compounds it,
    and past 10% the command advises retraining."""
    import torch

    from unlearn_cli.data.requests import parse_requests
    from unlearn_cli.engine.checkpoint import save_checkpoint
    from unlearn_cli.workflows.forget import cumulative_drift, plan_forget, probe_loss

    child = tmp_path / "child.safetensors"
    first = cli("forget", model, "--class", "1", "--out", child, "--json")
    summary = parse_json(first)
    (entry,) = read_metadata(child)["lineage"]
    assert summary["retain_drift"] == entry["retain_drift"]
    assert ("retraining from scratch" in first.stderr) == (entry["retain_drift"] > 0.10)
    # recomputed by hand: the loss of the first 512 retained samples, after over before
    parent, after = load_checkpoint(model), load_checkpoint(child)
    plan = plan_forget(parent, parse_requests({"requests": entry["requests"]}, "test"))
    probe = plan.retain.subset(torch.arange(min(512, len(plan.retain))))
    cpu = torch.device("cpu")
    expected = probe_loss(after.model, probe, cpu) / probe_loss(parent.model, probe, cpu) - 1
    assert entry["retain_drift"] == pytest.approx(expected, abs=1e-5)
    drifts = [{"retain_drift": 0.05}, {"retain_drift": 0.05}, {}]  # {}: written before drift
    assert cumulative_drift(drifts) == pytest.approx(0.1025)
    # a lineage that already drifted 50%: the next forget reports it and advises retraining
    drifted = load_checkpoint(child)
    drifted.lineage[0]["retain_drift"] = 0.5
    save_checkpoint(drifted, tmp_path / "drifted.safetensors")
    out = tmp_path / "again.safetensors"
    again = cli("forget", tmp_path / "drifted.safetensors", "--class", "3", "--out", out, "--json")
    total = parse_json(again)["cumulative_retain_drift"]
    second = read_metadata(out)["lineage"][1]["retain_drift"]
    assert total == pytest.approx(1.5 * (1 + second) - 1, abs=1e-6) and total > 0.10
    assert "retraining from scratch" in again.stderr


def test_rerunning_a_manifest_on_the_child_changes_nothing(cli, model, manifest, tmp_path):
    child = tmp_path / "child.safetensors"
    parse_json(cli("forget", model, "--manifest", manifest, "--out", child, "--json"))
    before, listing = child.read_bytes(), files(tmp_path)
    again = cli("forget", child, "--manifest", manifest, "--out", child, "--json")
    summary = parse_json(again)
    assert child.read_bytes() == before and files(tmp_path) == listing
    assert summary["out"] is None
    assert {r["status"] for r in summary["requests"]} == {"skipped: already forgotten"}
    assert "already forgotten" in again.stderr


def test_dry_run_counts_and_writes_nothing(cli, model, manifest, tmp_path):
    listing = files(tmp_path)
    summary = parse_json(cli("forget", model, "--manifest", manifest, "--dry-run", "--json"))
    assert files(tmp_path) == listing
    counts = {r["id"]: r["selected"] for r in summary["requests"]}
    from unlearn_cli.data.requests import training_set

    ones = int((training_set(load_checkpoint(model).dataset).labels == 1).sum())
    assert counts == {"gdpr-1": ones, "gdpr-2": 1}
    assert summary["forget_samples"] == ones + 1


def test_retrain_through_forget_equals_train_with_exclude(cli, tmp_path):
    manifest = tmp_path / "r.yaml"
    manifest.write_text("requests:\n  - id: r1\n    class: 1\n")
    base, ref = tmp_path / "base.safetensors", tmp_path / "ref.safetensors"
    common = ["--classes", "1,3,8", "--limit", "200", "--epochs", "1", "--batch-size", "64"]
    parse_json(cli("train", *common, "--out", base, "--json"))
    parse_json(cli("train", *common, "--exclude", manifest, "--out", ref, "--json"))
    child = tmp_path / "child.safetensors"
    parse_json(
        cli("forget", base, "--manifest", manifest, "--method", "retrain", "--out", child, "--json")
    )
    a, b = load_checkpoint(ref).model.state_dict(), load_checkpoint(child).model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_forget_flags_build_stable_request_ids(cli, model, tmp_path):
    out = tmp_path / "c.safetensors"
    summary = parse_json(
        cli(
            "forget",
            model,
            "--class",
            "1",
            "--indices",
            "12,7,10",
            "--method",
            "ascent",
            "--out",
            out,
            "--json",
        )
    )
    ids = [r["id"] for r in summary["requests"]]
    assert ids[0] == "cli-class-1" and ids[1].startswith("cli-indices-")
    again = parse_json(
        cli("forget", out, "--class", "1", "--indices", "7,10,12", "--out", out, "--json")
    )
    assert again["out"] is None


def test_default_output_is_not_silently_overwritten(cli, model, tmp_path):
    parse_json(cli("forget", model, "--class", "1", "--json"))
    result = cli("forget", model, "--class", "1")
    assert result.exit_code == 2 and "--force" in result.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["--class", "5"], "class 5 is not one the model was trained on"),
        (["--attribute", "Male"], "mnist has no attributes"),
        (["--indices", "1,-2"], "negative"),
        (["--indices", "1,x"], "'x' is not an integer"),
        (["--indices", "59999"], "index 59999 is not a sample"),
        ([], "nothing to forget"),
        (["--class", "1", "--class", "3", "--class", "8"], "nothing would be left to retain"),
        (["--class", "1", "--method", "foo"], "unknown method 'foo'"),
        (["--class", "1", "--method", "ascent", "--projection", "always"], "does not apply"),
        (["--class", "1", "--device", "cuda:7"], "--device cuda:7"),
        (["--class", "1", "--lr", "-1"], "lr must be positive"),
        (["--class", "1", "--retain-epochs", "-1"], "--retain-epochs must be at least 0"),
        (["--class", "1", "--method", "surgery", "--retain-epochs", "1"], "does not apply"),
        (["--class", "1", "--params", "encoder"], "use all or decoder"),
        (["--class", "1", "--npo-weight", "-1"], "--npo-weight must be at least 0"),
        (["--class", "1", "--method", "surgery", "--npo-weight", "1"], "does not apply"),
        (["--class", "1", "--method", "redirect", "--projection", "always"], "does not apply"),
        (["--class", "1", "--method", "fu", "--match-steps", "5"], "does not apply"),
        (["--class", "1", "--out", "/nonexistent/dir/x.safetensors"], "does not exist"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(cli, model, tmp_path, args, message):
    listing = files(tmp_path)
    result = cli("forget", model, *args)
    assert result.exit_code == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0]
    assert files(tmp_path) == listing


def test_wrong_kind_and_corrupt_checkpoints_are_refused(cli, tiny_judge, model, tmp_path):
    result = cli("forget", tiny_judge, "--class", "1")
    assert result.exit_code == 2 and "a generator (VAE) is needed" in result.stderr
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(model.read_bytes()[:1000])
    result = cli("forget", truncated, "--class", "1")
    assert result.exit_code == 2 and "truncated" in result.stderr
    assert not (tmp_path / "truncated-forget-redirect.safetensors").exists()
    from safetensors.torch import load_file, safe_open, save_file

    with safe_open(str(model), framework="pt") as f:
        metadata = f.metadata()
    edited = tmp_path / "edited.safetensors"
    lineage = '[{"operation": "forget", "requests": [{"id": "r1", "class": ["x"]}]}]'
    save_file(load_file(str(model)), str(edited), metadata={**metadata, "lineage": lineage})
    for command in (("forget", edited, "--class", "1"), ("evaluate", edited, "--samples", "10")):
        result = cli(*command)
        assert result.exit_code == 2 and "lineage is malformed" in result.stderr


def test_bad_manifest_is_exit_2(cli, model, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("requests:\n  - id: r1\n    klass: 1\n")
    result = cli("forget", model, "--manifest", bad)
    assert result.exit_code == 2
    assert "request 'r1': unknown key 'klass'" in result.stderr


def test_the_previous_redirect_default_is_one_option_away(cli, model, tmp_path):
    out = tmp_path / "previous.safetensors"
    parse_json(cli("forget", model, "--class", "1", "--npo-weight", "0", "--out", out, "--json"))
    (entry,) = read_metadata(out)["lineage"]
    assert entry["hyperparameters"]["npo_weight"] == 0.0
