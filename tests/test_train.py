"""`unlearn train` through the CLI: what it writes, and bad input refused before anything is."""

from __future__ import annotations

import os
import shlex

import pytest
import torch
from celeba_fixture import make_celeba
from conftest import parse_json

from unlearn_cli import __version__
from unlearn_cli.data.mnist import copy_embedded_to
from unlearn_cli.data.requests import ids_sha256
from unlearn_cli.data.spec import DatasetSpec, load_split
from unlearn_cli.engine.checkpoint import load_checkpoint, read_metadata

QUICK = "--epochs 1 --limit 200 --batch-size 100 --device cpu"


@pytest.fixture(scope="module")
def celeba_root(tmp_path_factory):
    return make_celeba(tmp_path_factory.mktemp("celeba"), n=24)


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """An empty current directory, where default output names would land."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def train(cli, workdir):
    """`train("--classes 1,3 --json")` runs `unlearn train --classes 1,3 --json` in `workdir`."""

    def run(line: str, *extra):
        return cli("train", *shlex.split(line), *extra)

    return run


def listing(root) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*")}


@pytest.fixture
def refused(train, workdir):
    """Runs `unlearn train LINE`, asserts it exits 2 with one `error:` line on stderr, nothing on
    stdout and the directory as it was; returns the error line."""

    def run(line: str, *extra) -> str:
        before = listing(workdir)
        result = train(line, *extra)
        assert result.exit_code == 2, result.stderr + result.stdout
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
        assert result.stdout == ""
        assert listing(workdir) == before
        return lines[0]

    return run


def test_writes_a_self_describing_vae(train, workdir):
    result = train("--classes 1,3,8 --epochs 1 --limit 300 --out m.safetensors --json")
    summary = parse_json(result)  # stdout holds the JSON document and nothing else
    assert summary["checkpoint"] == "m.safetensors" and summary["kind"] == "vae"
    assert summary["samples"] == 300 and summary["epochs"] == 1
    assert "wrote m.safetensors" in result.stderr
    meta = read_metadata(workdir / "m.safetensors")
    assert meta["kind"] == "vae"
    assert meta["dataset"]["name"] == "mnist" and meta["dataset"]["classes"] == [1, 3, 8]
    assert meta["dataset"]["root"] is None and meta["dataset"]["limit"] == 300
    assert meta["num_samples"] == 300 == summary["samples"]
    assert meta["train_seconds"] > 0 and meta["train_seconds"] == summary["train_seconds"]
    assert meta["tool_version"] == __version__
    assert meta["training"]["epochs"] == 1 and meta["training"]["device"] in ("cpu", "cuda")
    assert meta["lineage"] == []
    assert meta["model_config"]["arch"] == "mlp" and meta["model_config"]["latent_dim"] == 16
    assert [p.name for p in workdir.iterdir()] == ["m.safetensors"]


def test_flags_override_the_config(train, workdir):
    (workdir / "train.yaml").write_text("classes: [2, 7]\nepochs: 3\nlimit: 100\nlatent_dim: 4\n")
    result = train("--config train.yaml --epochs 1 --device cpu --out c.safetensors --json")
    summary = parse_json(result)
    assert summary["epochs"] == 1 and summary["samples"] == 100
    meta = read_metadata(workdir / "c.safetensors")
    assert meta["dataset"]["classes"] == [2, 7] and meta["model_config"]["latent_dim"] == 4


def test_default_output_name_and_no_silent_overwrite(train, refused, workdir):
    assert train(f"--classes 1,3 {QUICK}").exit_code == 0
    assert (workdir / "vae-mnist13.safetensors").is_file()
    assert "--force" in refused(f"--classes 1,3 {QUICK}")
    assert train(f"--classes 1,3 {QUICK} --force").exit_code == 0


def test_judge_records_its_test_accuracy(train, workdir):
    result = train(f"--model judge --classes 1,3,8 {QUICK} --out judge.safetensors --json")
    summary = parse_json(result)
    meta = read_metadata(workdir / "judge.safetensors")
    assert meta["kind"] == "judge" and meta["model_config"]["num_classes"] == 3
    accuracy = meta["metrics"]["test_accuracy"]
    assert 0.0 <= accuracy <= 1.0 and accuracy == summary["test_accuracy"]
    assert meta["metrics"]["test_samples"] == 200
    assert load_checkpoint(workdir / "judge.safetensors", kind="judge").kind == "judge"


def test_own_mnist_root(train, workdir):
    copy_embedded_to(workdir / "mnist")
    result = train(f"--classes 1,3,8 {QUICK} --data-dir mnist --out own.safetensors --json")
    assert parse_json(result)["samples"] == 200
    meta = read_metadata(workdir / "own.safetensors")
    assert meta["dataset"]["root"] == str(workdir / "mnist")  # absolute: usable from anywhere
    embedded = load_split(DatasetSpec(name="mnist", classes=(1, 3, 8), limit=200))
    assert meta["train_ids_sha256"] == ids_sha256(embedded.ids)
    ckpt = load_checkpoint(workdir / "own.safetensors")
    assert ckpt.dataset.root == str(workdir / "mnist")
    assert "embedded" not in ckpt.dataset.describe()


@pytest.mark.parametrize("classes", ["1,12", "-1,3", "1,x"])
def test_class_outside_the_digits(refused, classes):
    assert "--classes" in refused(f"--classes={classes} {QUICK} --out m.st")


@pytest.mark.parametrize("classes", ["''", ",", "' , '"])
def test_empty_class_list(refused, classes):
    assert "--classes is empty" in refused(f"--classes {classes} {QUICK} --out m.st")


def test_a_single_class(refused):
    assert "two distinct digits" in refused(f"--classes 3,3 {QUICK} --out m.st")


def test_data_dir_without_mnist(refused, workdir):
    (workdir / "empty").mkdir()
    message = refused(f"--data-dir empty {QUICK} --out m.st")
    assert "MNIST/raw/train-images-idx3-ubyte" in message


def test_data_dir_missing_one_file(refused, workdir):
    copy_embedded_to(workdir / "mnist")
    (workdir / "mnist" / "MNIST" / "raw" / "t10k-labels-idx1-ubyte").unlink()
    assert "t10k-labels-idx1-ubyte" in refused(f"--data-dir mnist {QUICK} --out m.st")


def test_unknown_celeba_attribute(refused, celeba_root):
    message = refused(
        f"--model judge --dataset celeba --attribute male {QUICK} --out j.st --data-dir",
        celeba_root,
    )
    assert "'male'" in message and "did you mean: Male" in message


def test_celeba_without_data_dir(refused):
    assert "--data-dir" in refused(f"--dataset celeba {QUICK} --out v.st")


def test_cuda_when_unavailable(refused, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    message = refused("--classes 1,3 --epochs 1 --limit 200 --device cuda --out m.st")
    assert "--device cuda: no CUDA device" in message and "use cpu or auto" in message


def test_unknown_device(refused):
    assert "'tpu'" in refused("--classes 1,3 --epochs 1 --device tpu --out m.st")


def test_output_in_a_missing_directory(refused, workdir):
    message = refused(f"--classes 1,3 {QUICK} --out nowhere/m.safetensors")
    assert "nowhere" in message and "does not exist" in message
    assert not (workdir / "nowhere").exists()


def test_output_under_a_regular_file(refused, workdir):
    (workdir / "notes.txt").write_text("a file, not a directory")
    message = refused(f"--classes 1,3 {QUICK} --out notes.txt/m.safetensors")
    assert "notes.txt" in message and "not a directory" in message
    assert (workdir / "notes.txt").read_text() == "a file, not a directory"


def test_output_in_a_read_only_directory(refused, workdir, monkeypatch):
    """Tests may run as root, where permissions do not stop writes: fake the refusal."""
    (workdir / "locked").mkdir()
    real_access = os.access

    def access(path, mode, **kwargs):
        if os.fspath(path) == "locked" and mode & os.W_OK:
            return False
        return real_access(path, mode, **kwargs)

    monkeypatch.setattr(os, "access", access)
    assert "not writable" in refused(f"--classes 1,3 {QUICK} --out locked/m.safetensors")


def test_output_that_is_a_directory(refused, workdir):
    (workdir / "out").mkdir()
    assert "is a directory" in refused(f"--classes 1,3 {QUICK} --out out")


@pytest.mark.parametrize("flag", ["--epochs", "--batch-size", "--limit"])
def test_zero_counts(refused, flag):
    message = refused(f"--classes 1,3 {QUICK} {flag} 0 --out m.st")  # the last value wins
    assert flag in message and "at least 1" in message


def test_unknown_model(refused):
    message = refused(f"--model foo {QUICK} --out m.st")
    assert "'foo'" in message and "vae or judge" in message


def test_config_with_an_unknown_key(refused, workdir):
    (workdir / "train.yaml").write_text("epochs: 1\nepoch: 2\nlimit: 200\n")
    message = refused("--config train.yaml --out m.st")
    assert "train.yaml" in message and "unknown key 'epoch'" in message


def test_config_of_the_wrong_type(refused, workdir):
    (workdir / "train.yaml").write_text("epochs: many\nlimit: 200\n")
    assert "config.epochs: expected int" in refused("--config train.yaml --out m.st")


def test_config_with_a_python_tag_runs_nothing(refused, workdir):
    (workdir / "evil.yaml").write_text('epochs: !!python/object/apply:os.system ["touch marker"]\n')
    message = refused("--config evil.yaml --out m.st")
    assert "evil.yaml" in message and "not plain YAML data" in message
    assert not (workdir / "marker").exists()


def test_missing_config(refused):
    message = refused("--config absent.yaml --out m.st")
    assert "absent.yaml" in message and "file not found" in message


def test_download_needs_a_data_dir(cli, tmp_path):
    """--download fetches into a folder the user names; the embedded copy needs none."""
    result = cli("train", "--download", "--epochs", "1", "--out", tmp_path / "m.safetensors")
    assert result.exit_code == 2
    assert "--download fetches MNIST into --data-dir" in result.stderr
    assert list(tmp_path.iterdir()) == []
