"""Numbers beyond any range (indices, classes, counts, seeds, learning rates) are refused before
use: exit 2, one line with the allowed range, nothing written."""

from __future__ import annotations

import pytest

HUGE = str(10**30)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--indices", HUGE), "past the largest index, 9223372036854775807"),
        (("--class", "12"), "class 12 is not one the model was trained on (its classes: 1,3,8)"),
        (("--class", "1", "--seed", HUGE), "from 0 to 4294967295"),
        (("--class", "1", "--seed", "-1"), "from 0 to 4294967295"),
        (("--class", "1", "--epochs", HUGE), "at most 2147483647"),
        (("--class", "1", "--batch-size", HUGE), "at most 2147483647"),
        (("--class", "1", "--lr", "inf"), "finite number"),
        (("--class", "1", "--lr", "nan"), "--lr"),
    ],
)
def test_forget_refuses_numbers_out_of_range(cli, tiny_vae, tmp_path, args, message):
    result = cli("forget", tiny_vae, *args, "--out", tmp_path / "o.safetensors")
    assert result.exit_code == 2, result.stderr
    assert message in result.stderr and result.stderr.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "entry",
    [
        (f"indices: [{HUGE}]", "from 0 to"),  # the allowed range, in the one line
        ("indices: [-1]", "from 0 to"),
        ("indices: [1.5]", "from 0 to"),
        (f"class: {HUGE}", "its classes: 1,3,8"),  # a class is checked against the model's
        ("class: 10", "its classes: 1,3,8"),
        ("class: -1", "neither a digit nor a class name"),
    ],
)
def test_a_manifest_number_out_of_range_is_a_refusal(cli, tiny_vae, tmp_path, entry):
    entry, message = entry
    manifest = tmp_path / "r.yaml"
    manifest.write_text(f"requests:\n  - id: a\n    {entry}\n")
    result = cli("forget", tiny_vae, "--manifest", manifest, "--dry-run")
    assert result.exit_code == 2, result.stderr
    assert message in result.stderr and result.stderr.count("\n") == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--samples", HUGE), "from 2 (FID needs two) to 2147483647"),
        (("--batch-size", "0"), "from 1 to 2147483647"),
        (("--seed", HUGE), "from 0 to 4294967295"),
    ],
)
def test_evaluate_refuses_numbers_out_of_range(cli, tiny_vae, args, message):
    result = cli("evaluate", tiny_vae, *args)
    assert result.exit_code == 2 and message in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--seed", HUGE), "from 0 to 4294967295"),
        (("--epochs", HUGE), "at most 2147483647"),
        (("--lr", "inf"), "finite number"),
        (("--latent-dim", "0"), "--latent-dim must be from 1 to 16384, got 0"),
        (("--latent-dim", HUGE), "--latent-dim must be from 1 to 16384"),
        (("--widths", f"64,{HUGE}"), "--widths: give layer widths from 1 to 16384"),
    ],
)
def test_train_refuses_numbers_out_of_range(cli, tmp_path, args, message):
    result = cli("train", "--limit", "10", *args, "--out", tmp_path / "t.safetensors")
    assert result.exit_code == 2 and message in result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("size", [-3, 4, 2048, 10**30])
def test_an_image_size_out_of_range_is_refused(cli, tmp_path, size):
    from folder_fixture import make_folder

    root = make_folder(tmp_path / "d", per_class=2, test_per_class=0)
    out = tmp_path / "t.safetensors"
    result = cli("train", "--dataset", "folder", "--data-dir", root, "--image-size", size,
                 "--out", out)  # fmt: skip
    assert result.exit_code == 2 and "must be from 8 to 1024" in result.stderr
    assert result.stderr.count("\n") == 1 and not out.exists()
