"""`unlearn` on a folder dataset end to end: train, forget by class name, attribute and file,
evaluate, compare, the changed-folder check and bad input (exit 2, one line, nothing written)."""

from __future__ import annotations

import shutil

import pytest
from conftest import parse_json
from folder_fixture import make_folder, striped_files

from unlearn_cli.data.folder import ATTR_FILE
from unlearn_cli.engine.checkpoint import load_checkpoint, read_metadata

TRAIN = ("train", "--dataset", "folder", "--epochs", "1", "--batch-size", "8", "--device", "cpu")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return make_folder(tmp_path_factory.mktemp("folder"), per_class=6, test_per_class=2, size=16)


@pytest.fixture(scope="module")
def vae(folder, tmp_path_factory):
    from typer.testing import CliRunner

    from unlearn_cli.cli import app

    out = tmp_path_factory.mktemp("models") / "vae.safetensors"
    args = [*TRAIN, "--data-dir", str(folder), "--latent-dim", "4", "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.stderr
    return out


def forget(cli, vae, tmp_path, *args):
    out = tmp_path / "child.safetensors"
    result = parse_json(cli("forget", vae, *args, "--out", out, "--json", "--device", "cpu"))
    return result, out


def test_train_records_the_folder(vae, folder):
    ckpt = load_checkpoint(vae, "vae")
    assert ckpt.model_config["arch"] == "mlp" and ckpt.model_config["image_size"] == 16
    spec = ckpt.dataset
    assert spec.name == "folder" and spec.root == str(folder)
    assert spec.classes == ("cat", "dog", "owl") and spec.fingerprint["files"] == 18
    assert ckpt.num_samples == 18


def test_train_conv_and_resnet_on_colour(cli, tmp_path):
    root = make_folder(tmp_path / "c", per_class=3, test_per_class=1, size=16, colour=True)
    vae, judge = tmp_path / "v.safetensors", tmp_path / "j.safetensors"
    small = ("--widths", "4,4,8,8", "--latent-dim", "4")
    assert cli(*TRAIN, "--data-dir", root, *small, "--out", vae).exit_code == 0
    assert load_checkpoint(vae).model_config | {"hidden": None} == {
        "arch": "conv",
        "channels": 3,
        "image_size": 16,
        "hidden": None,
        "latent_dim": 4,
    }
    args = ("--model", "judge", "--attribute", "Striped", "--data-dir", root, "--out", judge)
    assert cli(*TRAIN, *args, "--batch-size", 3).exit_code == 0  # no batch of one for BatchNorm
    meta = read_metadata(judge)
    assert meta["model_config"]["arch"] == "resnet18" and meta["model_config"]["num_classes"] == 2
    assert meta["metrics"]["test_samples"] == 3


@pytest.mark.parametrize("method", ["surgery", "ascent", "fu", "redirect", "retrain"])
def test_forget_a_class_by_name(cli, vae, tmp_path, method):
    result, out = forget(cli, vae, tmp_path, "--class", "dog", "--method", method)
    assert result["forget_samples"] == 6 and result["retain_samples"] == 12
    (entry,) = read_metadata(out)["lineage"]
    assert entry["requests"] == [{"id": "cli-class-dog", "class": ["dog"]}]


def test_forget_an_attribute_and_a_file(cli, vae, folder, tmp_path):
    result, _ = forget(cli, vae, tmp_path, "--attribute", "Striped", "--method", "surgery")
    assert result["forget_samples"] == len(striped_files(folder)) == 9
    ids = tmp_path / "ids.txt"
    ids.write_text("train/owl/002.png, train/cat/001.jpg\n")
    result, out = forget(cli, vae, tmp_path, "--indices-file", ids, "--method", "ascent")
    assert result["forget_samples"] == 2
    (entry,) = read_metadata(out)["lineage"]
    assert entry["requests"][0]["files"] == ["train/owl/002.png", "train/cat/001.jpg"]
    # the forgotten files against the never-seen test images: the membership attack
    report = parse_json(cli("evaluate", out, "--samples", 20, "--json"))
    assert report["target"] == "samples" and 0.0 <= report["privacy"]["mia_auc"] <= 1.0


def test_evaluate_scores_a_class_with_a_folder_judge(cli, vae, folder, tmp_path):
    judge = tmp_path / "judge.safetensors"
    assert cli(*TRAIN, "--model", "judge", "--data-dir", folder, "--out", judge).exit_code == 0
    _, child = forget(cli, vae, tmp_path, "--class", "owl", "--method", "surgery")
    args = ("--judge", judge, "--samples", 40, "--batch-size", 20, "--json")
    report = parse_json(cli("evaluate", child, *args))
    assert report["target"] == "class:owl" and 0.0 <= report["privacy"]["fratio"] <= 1.0
    assert report["utility"]["fid"] is not None and report["utility"]["retain_elbo"] > 0
    wrong = cli("evaluate", child, *args[:-1], "--target", "class:eel")
    assert wrong.exit_code == 2 and "eel" in wrong.stderr and wrong.stderr.count("\n") == 1


def test_a_changed_folder_is_said_before_any_work(cli, folder, tmp_path):
    copy = shutil.copytree(folder, tmp_path / "copy")
    vae = tmp_path / "vae.safetensors"
    assert cli(*TRAIN, "--data-dir", copy, "--latent-dim", "4", "--out", vae).exit_code == 0
    shutil.copy(copy / "train/cat/000.png", copy / "train/cat/500.png")
    with (copy / ATTR_FILE).open("a") as f:
        f.write("train/cat/500.png,0,1\n")
    result = cli("forget", vae, "--class", "cat", "--out", tmp_path / "c.safetensors")
    assert result.exit_code == 0
    first = result.stderr.splitlines()[0]
    assert "19 training images now, 18 when the model was trained" in first
    assert "resolved against its current files" in first
    report = cli("evaluate", tmp_path / "c.safetensors", "--samples", 20, "--json")
    assert report.exit_code == 0 and "scoring against the folder as it is now" in report.stderr
    (copy / "train/dog/003.jpg").unlink()  # a deletion request for a file no longer there
    gone = tmp_path / "gone.txt"
    gone.write_text("train/dog/003.jpg\n")
    refused = cli("forget", vae, "--indices-file", gone, "--out", tmp_path / "g.safetensors")
    assert refused.exit_code == 2 and not (tmp_path / "g.safetensors").exists()
    assert "can only be honoured while its images can still be read" in refused.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (("--class", "dgo"), "did you mean: dog"),
        (("--attribute", "striped"), "did you mean: Striped"),
        (("--indices", "3"), "named by their paths"),
    ],
)
def test_unknown_names_get_suggestions(cli, vae, tmp_path, args, message):
    out = tmp_path / "x.safetensors"
    result = cli("forget", vae, *args, "--out", out)
    assert result.exit_code == 2 and message in result.stderr
    assert result.stderr.count("\n") == 1 and not out.exists()


def test_a_corrupt_image_stops_training(cli, folder, tmp_path):
    copy = shutil.copytree(folder, tmp_path / "copy")
    (copy / "train/owl/004.png").write_bytes(b"\x89PNG truncated")
    out = tmp_path / "vae.safetensors"
    result = cli(*TRAIN, "--data-dir", copy, "--out", out)
    assert result.exit_code == 2 and "train/owl/004.png: not a readable image" in result.stderr
    assert result.stderr.count("\n") == 1 and not out.exists()


EXPERIMENT = """\
# unlearn compare folder.yaml
dataset: {{name: folder, data_dir: {root}}}
model: {{latent_dim: 4, hidden: [16]}}
train: {{epochs: 1, batch_size: 8}}
judge: {{epochs: 1, batch_size: 8}}
forget:
  requests:
    - {{id: forget-owl, class: owl}}
methods: [surgery]
seeds: [0]
evaluate: {{samples: 20, batch_size: 10}}
out_dir: {out}
"""


def test_compare_on_a_folder(cli, folder, tmp_path):
    path = tmp_path / "folder.yaml"
    path.write_text(EXPERIMENT.format(root=folder, out=tmp_path / "runs"))
    report = parse_json(cli("compare", path, "--json"))
    assert report["target"] == "class:owl"
    assert [r["title"].split(" ")[0] for r in report["rows"]] == ["BEFORE", "SURGERY", "RETRAIN"]
    for row in report["rows"]:
        assert 0.0 <= row["cells"]["privacy.fratio"]["mean"] <= 1.0
    (entry,) = read_metadata(report["rows"][1]["models"][0])["lineage"]
    assert entry["forgotten_count"] == 6 and entry["hyperparameters"]["lr"] == 5e-4


def test_an_attribute_forget_is_scored_by_an_attribute_judge(cli, vae, folder, tmp_path):
    judge = tmp_path / "striped.safetensors"
    args = ("--model", "judge", "--attribute", "Striped", "--data-dir", folder, "--out", judge)
    assert cli(*TRAIN, *args).exit_code == 0
    _, child = forget(cli, vae, tmp_path, "--attribute", "Striped")
    report = parse_json(cli("evaluate", child, "--judge", judge, "--samples", 40, "--json"))
    assert report["target"] == "attribute:Striped"
    assert 0.0 <= report["privacy"]["fratio"] <= 1.0 and report["utility"]["retain_elbo"] > 0
    # a judge of other images than the model draws is refused, not run on them
    small = tmp_path / "small.safetensors"
    assert cli(*TRAIN, *args[:-1], small, "--image-size", 12).exit_code == 0
    wrong = cli("evaluate", child, "--judge", small, "--samples", 40)
    assert wrong.exit_code == 2 and wrong.stderr.count("\n") == 1
    assert "classifies grey 12x12 images but the model draws grey 16x16 ones" in wrong.stderr
    assert f"--data-dir {folder} --image-size 16" in wrong.stderr


def test_a_manifest_names_files_by_their_paths(cli, vae, tmp_path):
    manifest = tmp_path / "requests.yaml"
    manifest.write_text(
        "requests:\n"
        "  - {id: req-1, files: [train/owl/002.png, train/cat/001.jpg]}\n"
        "  - {id: req-2, files: train/dog/004.png}\n"
    )
    result, out = forget(cli, vae, tmp_path, "--manifest", manifest)
    assert result["forget_samples"] == 3
    (entry,) = read_metadata(out)["lineage"]
    assert [r["files"] for r in entry["requests"]] == [
        ["train/owl/002.png", "train/cat/001.jpg"],
        ["train/dog/004.png"],
    ]
    manifest.write_text("requests:\n  - {id: req-3, files: [train/owl/002.jpeg]}\n")
    refused = cli("forget", vae, "--manifest", manifest, "--out", tmp_path / "x.safetensors")
    assert refused.exit_code == 2 and "train/owl/002.jpeg" in refused.stderr


def test_a_list_of_files_may_hold_paths_with_spaces(cli, vae, folder, tmp_path):
    copy = shutil.copytree(folder, tmp_path / "copy")
    (copy / "train/owl/002.png").rename(copy / "train/owl/my photo.png")
    attrs = (copy / ATTR_FILE).read_text().replace("train/owl/002.png", "train/owl/my photo.png")
    (copy / ATTR_FILE).write_text(attrs)
    model = tmp_path / "vae.safetensors"
    assert cli(*TRAIN, "--data-dir", copy, "--latent-dim", "4", "--out", model).exit_code == 0
    ids = tmp_path / "ids.txt"
    ids.write_text("train/owl/my photo.png   # a path with a space: the whole line\n")
    result, out = forget(cli, model, tmp_path, "--indices-file", ids)
    assert result["forget_samples"] == 1
    assert read_metadata(out)["lineage"][0]["requests"][0]["files"] == ["train/owl/my photo.png"]


def bad_csv_value(root):
    lines = (root / ATTR_FILE).read_text().splitlines()
    lines[3] = lines[3].rsplit(",", 1)[0] + ",2"
    (root / ATTR_FILE).write_text("\n".join(lines) + "\n")


def short_row(root):
    lines = (root / ATTR_FILE).read_text().splitlines()
    lines[2] = lines[2].rsplit(",", 1)[0]
    (root / ATTR_FILE).write_text("\n".join(lines) + "\n")


def missing_row(root):
    lines = (root / ATTR_FILE).read_text().splitlines()
    (root / ATTR_FILE).write_text("\n".join([lines[0], *lines[2:]]) + "\n")


def empty_class(root):
    (root / "train/bat").mkdir()


def lone_image(root):
    (root / "train/bat").mkdir()
    shutil.copy(root / "train/cat/000.png", root / "train/bat/000.png")


@pytest.mark.parametrize(
    "spoil, message",
    [
        (bad_csv_value, f"{ATTR_FILE}:4: expected a file and 2 values of 0/1 or -1/1"),
        (short_row, f"{ATTR_FILE}:3: expected a file and 2 values of 0/1 or -1/1"),
        (missing_row, "no row for train/cat/000.png"),
        (empty_class, "class 'bat'"),
        (lone_image, "has only one image"),
    ],
)
def test_a_spoilt_folder_stops_training_in_one_line(cli, folder, tmp_path, spoil, message):
    copy = shutil.copytree(folder, tmp_path / "copy")
    spoil(copy)
    out = tmp_path / "vae.safetensors"
    result = cli(*TRAIN, "--data-dir", copy, "--out", out)
    assert result.exit_code == 2 and message in result.stderr
    assert result.stderr.count("\n") == 1 and not out.exists()


def test_compare_forgets_an_attribute_on_a_folder(cli, folder, tmp_path):
    path = tmp_path / "folder.yaml"
    text = EXPERIMENT.format(root=folder, out=tmp_path / "runs")
    text = text.replace("judge: {epochs: 1,", "judge: {attribute: Striped, epochs: 1,")
    text = text.replace("{id: forget-owl, class: owl}", "{id: forget-striped, attribute: Striped}")
    path.write_text(text)
    report = parse_json(cli("compare", path, "--json"))
    assert report["target"] == "attribute:Striped"
    assert [r["title"].split(" ")[0] for r in report["rows"]] == ["BEFORE", "SURGERY", "RETRAIN"]
    (entry,) = read_metadata(report["rows"][1]["models"][0])["lineage"]
    assert entry["forgotten_count"] == len(striped_files(folder)) == 9
