"""Image datasets that remember where every sample came from.

Every sample carries an identity (`ids`) that deletion requests can name: its index in the
original split of its dataset, whatever subset is in use. Items are `(image, label, id)` with the
image as float in [0, 1].
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import torch
from torch.utils.data import Dataset, default_collate

from unlearn_cli.errors import DataError


class Samples(Protocol):
    """What the engine needs of a dataset: ImageData, CelebA and their subsets."""

    ids: torch.Tensor  # (N,) int64 identities

    def __len__(self) -> int: ...

    def subset(self, positions: torch.Tensor) -> Samples: ...


class ImageData(Dataset):
    """Images held in memory as uint8, for datasets small enough to keep there (MNIST)."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, ids: torch.Tensor):
        assert len(images) == len(labels) == len(ids)
        self.images = images  # (N, C, H, W) uint8
        self.labels = labels  # (N,) class labels or (N, A) attribute flags
        self.ids = ids  # (N,) int64 identities

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int):
        return self.images[i].float() / 255.0, self.labels[i], self.ids[i]

    def __getitems__(self, positions: Sequence[int]):
        """Batched fetch: the DataLoader calls this with a whole batch of positions at once."""
        idx = torch.as_tensor(positions, dtype=torch.long)
        return self.images[idx].float() / 255.0, self.labels[idx], self.ids[idx]

    def subset(self, positions: torch.Tensor) -> ImageData:
        return ImageData(self.images[positions], self.labels[positions], self.ids[positions])


def collate(batch):
    """Pass through batches that `__getitems__` already stacked; stack the rest."""
    return batch if isinstance(batch, tuple) else default_collate(batch)


def split_by_ids(dataset, forget_ids: torch.Tensor):
    """(forget, retain) subsets of a dataset with `.ids` and `.subset()`."""
    mask = torch.isin(dataset.ids, forget_ids)
    forget = dataset.subset(torch.nonzero(mask, as_tuple=True)[0])
    retain = dataset.subset(torch.nonzero(~mask, as_tuple=True)[0])
    return forget, retain


def decode(raw: bytes, path: Path, size: int, channels: int, crop: int | None = None):
    """(C, size, size) uint8: resize the shorter side to `size` and centre-crop (or, with
    `crop`, centre-crop to `crop` first, as CelebA's faces are)."""
    from PIL import Image
    from torchvision.transforms.v2 import functional as F

    try:
        with Image.open(io.BytesIO(raw)) as img:
            x = F.pil_to_tensor(img.convert("L" if channels == 1 else "RGB"))  # (C, H, W)
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        raise DataError(f"{path}: not a readable image ({e}); replace or remove it") from None
    if crop is not None:
        x = F.center_crop(x, [crop, crop])
    if tuple(x.shape[1:]) != (size, size):
        x = F.resize(x, size, antialias=True)  # shorter side -> size
        x = F.center_crop(x, [size, size])
    return x
