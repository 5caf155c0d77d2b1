"""MNIST's IDX files read without torchvision give exactly what torchvision's reader gives."""

from __future__ import annotations

import pytest
import torch

from unlearn_cli.data.mnist import RAW_FILES, embedded_root, load_mnist, read_idx
from unlearn_cli.errors import DataError


@pytest.mark.parametrize("split", ["train", "test"])
def test_read_idx_matches_torchvision(split):
    from torchvision.datasets import MNIST

    reference = MNIST(str(embedded_root()), train=split == "train", download=False)
    data = load_mnist(None, split, None)
    assert torch.equal(data.images[:, 0], reference.data)
    assert torch.equal(data.labels, reference.targets.long())
    assert data.images.shape == (60_000 if split == "train" else 10_000, 1, 28, 28)


def test_a_truncated_idx_file_is_a_data_error(tmp_path):
    source = embedded_root() / "MNIST" / "raw" / RAW_FILES["test"][1]
    broken = tmp_path / "labels"
    broken.write_bytes(source.read_bytes()[:-1])
    with pytest.raises(DataError, match="truncated"):
        read_idx(broken)
    broken.write_bytes(b"PK\x03\x04 a zip file")
    with pytest.raises(DataError, match="not an IDX file"):
        read_idx(broken)
