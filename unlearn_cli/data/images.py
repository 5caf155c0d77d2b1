"""Image datasets that remember where every sample came from.

Every sample carries an identity (`ids`) that deletion requests can name: its index in the
original split of its dataset, whatever subset is in use. Items are `(image, label, id)` with the
image as float in [0, 1].
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import torch
from torch.utils.data import Dataset, default_collate


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
