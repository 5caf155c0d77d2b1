"""An output flag pointed at one of the command's own inputs is refused, and the input kept."""

from __future__ import annotations

import json
import shutil


def test_evaluate_grid_onto_the_model(cli, tiny_vae, tiny_judge, tmp_path):
    model = tmp_path / "model.safetensors"
    shutil.copy(tiny_vae, model)
    before = model.read_bytes()
    result = cli("evaluate", model, "--judge", tiny_judge, "--grid", model, "--samples", "10")
    assert result.exit_code == 2
    assert "--grid" in result.stderr and "also an input" in result.stderr
    assert model.read_bytes() == before


def test_forget_ledger_onto_the_checkpoint(cli, tiny_vae, tmp_path):
    model = tmp_path / "model.safetensors"
    shutil.copy(tiny_vae, model)
    before = model.read_bytes()
    result = cli("forget", model, "--class", "1", "--ledger", model)
    assert result.exit_code == 2 and "--ledger" in result.stderr
    assert model.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors"]


def test_forget_out_onto_the_manifest(cli, tiny_vae, tmp_path):
    manifest = tmp_path / "r.yaml"
    manifest.write_text("requests:\n  - id: a\n    class: 1\n")
    result = cli("forget", tiny_vae, "--manifest", manifest, "--out", manifest)
    assert result.exit_code == 2 and "--out" in result.stderr
    assert manifest.read_text().startswith("requests:")


def test_forget_out_onto_unos_judge(cli, tiny_vae, tiny_judge, tmp_path):
    judge = tmp_path / "judge.safetensors"
    shutil.copy(tiny_judge, judge)
    before = judge.read_bytes()
    result = cli(
        "forget", tiny_vae, "--class", "1", "--method", "uno", "--judge", judge, "--out", judge
    )
    assert result.exit_code == 2 and "also an input" in result.stderr
    assert judge.read_bytes() == before


def test_compare_markdown_onto_a_checkpoint(cli, tiny_vae, tiny_judge, tmp_path):
    model = tmp_path / "model.safetensors"
    shutil.copy(tiny_vae, model)
    before = model.read_bytes()
    result = cli("compare", model, "--judge", tiny_judge, "--markdown", model)
    assert result.exit_code == 2 and "--markdown" in result.stderr
    assert model.read_bytes() == before


def forget_onto(cli, model, out, *extra):
    return cli("forget", model, "--class", "1", "--method", "ascent", "--out", out, *extra)


def test_forget_out_onto_the_checkpoint_by_any_name(cli, tiny_vae, tmp_path, monkeypatch):
    model = tmp_path / "model.safetensors"
    shutil.copy(tiny_vae, model)
    (tmp_path / "link.safetensors").symlink_to(model)
    (tmp_path / "sub").mkdir()
    before = model.read_bytes()
    monkeypatch.chdir(tmp_path / "sub")
    for name in (model, "../model.safetensors", tmp_path / "link.safetensors"):
        result = forget_onto(cli, model, name)
        assert result.exit_code == 2, result.stderr
        assert "also an input" in result.stderr and "--in-place" in result.stderr
        assert model.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "link.safetensors",
        "model.safetensors",
        "sub",
    ]


def test_forget_in_place_replaces_the_checkpoint_and_keeps_its_hash(cli, tiny_vae, tmp_path):
    from unlearn_cli.engine.checkpoint import load_checkpoint
    from unlearn_cli.engine.files import file_sha256

    model, ledger = tmp_path / "model.safetensors", tmp_path / "L.jsonl"
    shutil.copy(tiny_vae, model)
    link = tmp_path / "link.safetensors"
    link.symlink_to(model)
    parent = file_sha256(model)
    result = forget_onto(cli, link, link, "--in-place", "--ledger", ledger)
    assert result.exit_code == 0, result.stderr
    assert link.is_symlink() and file_sha256(model) != parent  # the file replaced, the link kept
    assert load_checkpoint(model).lineage[-1]["parent_sha256"] == parent
    (receipt,) = [json.loads(line) for line in ledger.read_text().splitlines()]
    assert receipt["replaced_sha256"] == receipt["parent_sha256"] == parent
    assert receipt["child_sha256"] == file_sha256(model)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "L.jsonl",
        "L.jsonl.lock",
        "link.safetensors",
        "model.safetensors",
    ]
    assert cli("audit", ledger).exit_code == 0


def test_evaluate_grid_onto_a_shadow(cli, tiny_vae, tmp_path):
    shadow = tmp_path / "shadow.safetensors"
    shutil.copy(tiny_vae, shadow)
    before = shadow.read_bytes()
    result = cli("evaluate", tiny_vae, "--shadow", shadow, "--grid", shadow, "--samples", "10")
    assert result.exit_code == 2 and "--grid" in result.stderr
    assert shadow.read_bytes() == before


def test_train_out_onto_its_config(cli, tmp_path):
    config = tmp_path / "train.yaml"
    config.write_text("epochs: 1\nlimit: 50\n")
    result = cli("train", "--config", config, "--out", config)
    assert result.exit_code == 2 and "--out" in result.stderr and "also an input" in result.stderr
    assert config.read_text() == "epochs: 1\nlimit: 50\n"
