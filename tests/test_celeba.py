"""The CelebA reader and `unlearn train` on a generated CelebA in the official layout."""

from __future__ import annotations

import shutil

import pytest
import torch
from celeba_fixture import ATTRIBUTES, attributes, file_name, make_celeba, partition

from unlearn_cli.data.celeba import ATTR_FILE, PARTITION_FILE, CelebA
from unlearn_cli.data.spec import DatasetSpec, load_split
from unlearn_cli.engine.checkpoint import load_checkpoint, read_metadata
from unlearn_cli.errors import DataError

N = 24


@pytest.fixture(scope="module")
def celeba_root(tmp_path_factory):
    """A 24-image CelebA; tests that change it make their own copy."""
    return make_celeba(tmp_path_factory.mktemp("celeba"), n=N)


@pytest.fixture
def celeba_copy(celeba_root, tmp_path):
    return shutil.copytree(celeba_root, tmp_path / "celeba")


def files_in(split: int) -> list[str]:
    return [file_name(i) for i, s in enumerate(partition(N)) if s == split]


def test_fixture_has_the_official_layout(celeba_root):
    lines = (celeba_root / ATTR_FILE).read_text().splitlines()
    assert lines[0] == str(N)
    assert lines[1].split() == ATTRIBUTES and len(ATTRIBUTES) == 40
    assert lines[2].startswith("000001.jpg ") and len(lines) == N + 2
    assert sorted(p.name for p in (celeba_root / "img_align_celeba").iterdir()) == [
        file_name(i) for i in range(N)
    ]
    assert {0, 1, 2} == set(partition(N)) and partition(N).count(0) > N // 2


def test_images_are_64px_rgb_in_unit_range(celeba_root):
    data = CelebA(celeba_root, "train")
    x, labels, ident = data[0]
    assert x.shape == (3, 64, 64) and x.dtype == torch.float32
    assert x.min() >= 0.0 and x.max() <= 1.0
    assert labels.shape == (40,) and int(ident) == 0


def test_labels_match_the_attribute_file(celeba_root):
    table = torch.from_numpy(attributes(N)) == 1  # (N, 40) what the fixture wrote
    for split, number in (("train", 0), ("valid", 1), ("test", 2)):
        data = CelebA(celeba_root, split)
        assert data.attr_names == ATTRIBUTES
        assert data.files == files_in(number)
        rows = [int(f[:6]) - 1 for f in data.files]
        assert torch.equal(data.labels.bool(), table[rows])


def test_male_images_are_darker(celeba_root):
    """The reader pairs each image with its own row: the fixture draws Male faces dark."""
    data = CelebA(celeba_root, "train")
    male = data.attribute_index("Male")
    means = torch.stack([data[i][0].mean() for i in range(len(data))])
    is_male = data.labels[:, male].bool()
    assert is_male.any() and (~is_male).any()
    assert means[is_male].max() < means[~is_male].min()


def test_ids_are_indices_within_the_split(celeba_root):
    for split in ("train", "valid", "test"):
        data = CelebA(celeba_root, split)
        assert torch.equal(data.ids, torch.arange(len(data)))
    valid = CelebA(celeba_root, "valid")
    assert [int(valid[i][2]) for i in range(len(valid))] == list(range(len(valid)))


def test_ids_of_files(celeba_root):
    data = CelebA(celeba_root, "train")
    assert data.ids_of_files(["000003.jpg", "000001.jpg"]).tolist() == [2, 0]
    sub = data.subset(torch.tensor([4, 5, 6]))
    assert sub.ids.tolist() == [4, 5, 6]
    assert sub.ids_of_files(["000006.jpg"]).tolist() == [5]
    held_out = files_in(2)[0]
    with pytest.raises(DataError, match=held_out):
        data.ids_of_files([held_out])


def test_unknown_attribute_suggests_close_names(celeba_root):
    data = CelebA(celeba_root, "train")
    assert data.attribute_index("Male") == ATTRIBUTES.index("Male")
    with pytest.raises(DataError, match=r"did you mean: Male") as e:
        data.attribute_index("male")
    assert "\n" not in str(e.value)
    with pytest.raises(DataError, match=r"did you mean: .*Smiling"):
        data.attribute_index("Smilling")


def test_spec_checks_the_attribute_when_loading(celeba_root):
    spec = DatasetSpec(name="celeba", root=str(celeba_root), attribute="Eyeglass")
    with pytest.raises(DataError, match="Eyeglasses"):
        load_split(spec)


def test_torchvision_layout_is_found(celeba_root, tmp_path):
    shutil.copytree(celeba_root, tmp_path / "celeba")
    data = CelebA(tmp_path, "valid")
    assert data.root == tmp_path / "celeba" and data.files == files_in(1)


def test_missing_annotation_file_names_it(celeba_copy, tmp_path):
    with pytest.raises(DataError, match=ATTR_FILE):
        CelebA(tmp_path / "elsewhere")
    (celeba_copy / PARTITION_FILE).unlink()
    with pytest.raises(DataError, match=PARTITION_FILE) as e:
        CelebA(celeba_copy)
    assert str(celeba_copy / PARTITION_FILE) in str(e.value)


def test_malformed_attribute_line_names_file_and_line(celeba_copy):
    path = celeba_copy / ATTR_FILE
    lines = path.read_text().splitlines()
    lines[4] = lines[4].replace("-1", " 0", 1)  # line 5: a value that is neither 1 nor -1
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError) as e:
        CelebA(celeba_copy)
    assert f"{path}:5:" in str(e.value) and "\n" not in str(e.value)


def test_short_attribute_line_names_file_and_line(celeba_copy):
    path = celeba_copy / ATTR_FILE
    lines = path.read_text().splitlines()
    lines[7] = lines[7].rsplit(" ", 1)[0]  # line 8: one value short
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=f"{path}:8:"):
        CelebA(celeba_copy)


def test_missing_images_are_reported(celeba_copy):
    shutil.rmtree(celeba_copy / "img_align_celeba")
    with pytest.raises(DataError, match="img_align_celeba"):
        CelebA(celeba_copy)


def test_train_conv_vae(cli, celeba_root, tmp_path):
    out = tmp_path / "vae.safetensors"
    args = "train --dataset celeba --epochs 1 --batch-size 8 --device cpu"
    result = cli(*args.split(), "--data-dir", celeba_root, "--out", out)
    assert result.exit_code == 0, result.stderr
    ckpt = load_checkpoint(out, kind="vae")
    assert ckpt.model_config["arch"] == "conv" and ckpt.model_config["channels"] == 3
    assert ckpt.dataset.name == "celeba" and ckpt.dataset.root == str(celeba_root)
    assert ckpt.num_samples == len(files_in(0))
    samples = ckpt.model.decode(torch.randn(2, ckpt.model.latent_dim))
    assert samples.shape == (2, 3, 64, 64)


def test_train_resnet_judge(cli, celeba_root, tmp_path):
    """ResNet18 is slow on a CPU: one batch of 8 images is enough to show it trains and saves."""
    out = tmp_path / "judge.safetensors"
    args = "train --model judge --dataset celeba --attribute Male --epochs 1 --batch-size 8"
    result = cli(
        *args.split(), "--limit", 8, "--device", "cpu", "--data-dir", celeba_root, "--out", out
    )
    assert result.exit_code == 0, result.stderr
    ckpt = load_checkpoint(out, kind="judge")
    assert ckpt.model_config["arch"] == "resnet18" and ckpt.model_config["num_classes"] == 2
    assert ckpt.dataset.attribute == "Male" and ckpt.num_samples == 8
    meta = read_metadata(out)
    assert meta["metrics"]["test_samples"] == len(files_in(2))
    test = CelebA(celeba_root, "test")
    x = torch.stack([test[i][0] for i in range(len(test))])  # (N, 3, 64, 64)
    with torch.no_grad():  # the recorded accuracy is the judge's on the test split's Male flag
        right = ckpt.model(x).argmax(1) == test.labels[:, test.attribute_index("Male")]
    assert meta["metrics"]["test_accuracy"] == pytest.approx(right.double().mean().item(), abs=1e-5)
    assert ckpt.model(x).shape == (len(x), 2) and ckpt.model.features(x).shape == (len(x), 512)


@pytest.mark.parametrize("with_attribute, expected", [(True, 1.0), (False, 0.0)])
def test_celeba_fratio_counts_the_judges_class_with_the_attribute(
    cli, celeba_root, tmp_path, with_attribute, expected
):
    """A hand-made judge that calls every image "Male" (class 1), or none: fratio of attr:Male
    counts class 1, so it is 1 for the first and 0 for the second, whatever the images."""
    import dataclasses

    from conftest import parse_json

    from unlearn_cli.engine.checkpoint import Checkpoint, save_checkpoint
    from unlearn_cli.models import JudgeConfig, build_judge

    vae = tmp_path / "vae.safetensors"
    train = "train --dataset celeba --epochs 1 --batch-size 8 --latent-dim 4 --device cpu"
    assert cli(*train.split(), "--data-dir", celeba_root, "--out", vae).exit_code == 0
    cfg = JudgeConfig.from_name("celeba")
    judge = build_judge(cfg).eval()
    with torch.no_grad():  # every image: logits (0, 20) "Male", or (20, 0) "not Male"
        judge.head.weight.zero_()
        judge.head.bias.copy_(torch.tensor([0.0, 20.0] if with_attribute else [20.0, 0.0]))
    spec = dataclasses.replace(load_checkpoint(vae).dataset, attribute="Male")
    path = tmp_path / "judge.safetensors"
    save_checkpoint(Checkpoint("judge", judge, cfg.to_dict(), spec, training={}), path)
    args = ["evaluate", vae, "--judge", path, "--target", "attr:Male", "--samples", 8, "--json"]
    result = parse_json(cli(*args, "--batch-size", 4))
    assert result["privacy"]["fratio"] == expected
