"""MNIST (embedded copy and torchvision roots), dataset specs and in-memory image data."""

from __future__ import annotations

import hashlib

import pytest
import torch

from unlearn_cli.data.images import ImageData, collate, split_by_ids
from unlearn_cli.data.mnist import RAW_FILES, copy_embedded_to, embedded_root, load_mnist
from unlearn_cli.data.spec import DatasetSpec, load_split
from unlearn_cli.engine.train import make_loader
from unlearn_cli.errors import DataError


def test_embedded_copy_unpacks_into_the_cache(cache_dir):
    root = embedded_root()
    assert root == cache_dir / "mnist"
    for name in (n for pair in RAW_FILES.values() for n in pair):
        assert (root / "MNIST" / "raw" / name).stat().st_size > 0
    assert not list((root / "MNIST" / "raw").glob("*.tmp*"))  # written atomically
    assert embedded_root() == root  # second use: nothing to unpack


def test_embedded_files_match_the_published_checksums():
    from importlib import resources

    sums = resources.files("unlearn_cli.data").joinpath("mnist_raw/MD5SUMS.uncompressed")
    expected = {
        name: md5
        for md5, name in (line.split() for line in sums.read_text().splitlines() if line.strip())
    }
    raw = embedded_root() / "MNIST" / "raw"
    assert len(expected) == 4
    for name, md5 in expected.items():
        assert hashlib.md5((raw / name).read_bytes()).hexdigest() == md5


def test_load_mnist_splits_and_classes():
    train = load_mnist(None, "train", None)
    test = load_mnist(None, "test", None)
    assert len(train) == 60000 and len(test) == 10000
    assert train.images.shape == (60000, 1, 28, 28) and train.images.dtype == torch.uint8
    assert torch.equal(train.ids, torch.arange(60000))
    subset = load_mnist(None, "train", (1, 3, 8))
    assert set(subset.labels.unique().tolist()) == {1, 3, 8}
    assert len(subset) == int(torch.isin(train.labels, torch.tensor([1, 3, 8])).sum())
    # identities are indices in the whole split, whatever the subset
    assert torch.equal(train.labels[subset.ids], subset.labels)
    assert torch.equal(train.images[subset.ids[:50]], subset.images[:50])


def test_items_are_unit_range_floats():
    data = load_mnist(None, "test", (0, 7))
    x, y, ident = data[0]
    assert x.shape == (1, 28, 28) and x.dtype == torch.float32
    assert x.min() >= 0.0 and x.max() <= 1.0 and x.max() > 0.5
    assert int(y) in (0, 7) and int(ident) == int(data.ids[0])


def test_batched_fetch_equals_single_items():
    data = load_mnist(None, "test", None).subset(torch.arange(40))
    x, y, ids = data.__getitems__([3, 0, 17])
    for row, i in enumerate([3, 0, 17]):
        xi, yi, idi = data[i]
        assert torch.equal(x[row], xi) and y[row] == yi and ids[row] == idi
    loader = make_loader(data, 16, torch.device("cpu"))
    batches = list(loader)
    assert [len(b[0]) for b in batches] == [16, 16, 8]
    assert torch.equal(torch.cat([b[2] for b in batches]), data.ids)
    assert collate([data[0], data[1]])[0].shape == (2, 1, 28, 28)


def test_split_by_ids():
    data = ImageData(
        torch.zeros(6, 1, 2, 2, dtype=torch.uint8),
        torch.arange(6) % 2,
        torch.tensor([10, 11, 12, 13, 14, 15]),
    )
    forget, retain = split_by_ids(data, torch.tensor([11, 14, 99]))
    assert forget.ids.tolist() == [11, 14]
    assert retain.ids.tolist() == [10, 12, 13, 15]


def test_user_root_equals_embedded(tmp_path):
    copy_embedded_to(tmp_path)
    own = load_mnist(str(tmp_path), "train", (2, 5))
    embedded = load_mnist(None, "train", (2, 5))
    assert torch.equal(own.images, embedded.images) and torch.equal(own.ids, embedded.ids)


def test_root_without_mnist_names_the_missing_file(tmp_path):
    with pytest.raises(DataError, match="MNIST/raw/train-images-idx3-ubyte"):
        load_mnist(str(tmp_path), "train", None)
    copy_embedded_to(tmp_path)
    (tmp_path / "MNIST" / "raw" / "train-labels-idx1-ubyte").unlink()
    with pytest.raises(DataError, match="train-labels-idx1-ubyte") as e:
        load_mnist(str(tmp_path), "test", None)
    assert "\n" not in str(e.value)


def test_unwritable_cache_is_a_data_error(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("UNLEARN_CACHE_DIR", str(blocker))
    with pytest.raises(DataError, match="UNLEARN_CACHE_DIR"):
        embedded_root()


def test_spec_round_trip_and_derived_values():
    spec = DatasetSpec(
        name="mnist", classes=(8, 1, 3, 3), limit=50, exclude=({"id": "r1", "class": [1]},)
    )
    assert spec.classes == (1, 3, 8)
    assert (spec.image_size, spec.channels, spec.num_classes) == (28, 1, 3)
    assert DatasetSpec.from_dict(spec.to_dict()) == spec
    celeba = DatasetSpec(name="celeba", root="/data/celeba", attribute="Male")
    assert (celeba.image_size, celeba.channels, celeba.num_classes) == (64, 3, 2)
    assert DatasetSpec.from_dict(celeba.to_dict()) == celeba
    assert "digits 1,3,8" in spec.describe() and ", first 50" in spec.describe()


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        (dict(name="cifar"), "unknown dataset 'cifar'"),
        (dict(name="celeba"), "data_dir"),
        (dict(name="mnist", limit=0), "limit must be at least 1"),
    ],
)
def test_spec_rejects(kwargs, needle):
    with pytest.raises(DataError, match=needle):
        DatasetSpec(**kwargs)


def test_load_split_applies_the_limit_in_order():
    spec = DatasetSpec(name="mnist", classes=(1, 3, 8), limit=25)
    data = load_split(spec)
    full = load_mnist(None, "train", (1, 3, 8))
    assert torch.equal(data.ids, full.ids[:25])
    assert len(load_split(spec, split="test")) == 25
