"""An output flag pointed at one of the command's own inputs is refused, and the input kept."""

from __future__ import annotations

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


def test_compare_markdown_onto_a_checkpoint(cli, tiny_vae, tiny_judge, tmp_path):
    model = tmp_path / "model.safetensors"
    shutil.copy(tiny_vae, model)
    before = model.read_bytes()
    result = cli("compare", model, "--judge", tiny_judge, "--markdown", model)
    assert result.exit_code == 2 and "--markdown" in result.stderr
    assert model.read_bytes() == before
