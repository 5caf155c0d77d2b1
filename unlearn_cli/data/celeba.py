"""CelebA in its official layout, read from a user's copy (it cannot be redistributed).

Expected under `root` (or `root/celeba`, torchvision's layout):

    img_align_celeba/000001.jpg ...
    list_attr_celeba.txt        count, then the 40 attribute names, then `file  1 -1 ...` rows
    list_eval_partition.txt     `file split` rows, split 0 = train, 1 = valid, 2 = test

torchvision's own CelebA class checks md5 sums of the annotation files, so it cannot read a
test fixture; this reader serves both, decoding images as a folder dataset does
(`unlearn_cli.data.images.decode`, after the face crop). A sample's identity is its index within
its split; its file name is accepted wherever an identity is.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import Dataset

from unlearn_cli.data.images import decode
from unlearn_cli.errors import DataError, suggest

ATTR_FILE = "list_attr_celeba.txt"
PARTITION_FILE = "list_eval_partition.txt"
IMAGE_DIR = "img_align_celeba"
SPLITS = {"train": 0, "valid": 1, "test": 2}
CROP = 148  # the usual face crop of the 178x218 aligned images, before resizing


def find_root(root: str | Path) -> Path:
    """The folder holding the annotation files: `root` itself or `root/celeba`."""
    root = Path(root).expanduser()
    for candidate in (root, root / "celeba"):
        if (candidate / ATTR_FILE).exists():
            return candidate
    raise DataError(
        f"{root}: missing {root / ATTR_FILE}; point it at your CelebA copy "
        f"(the folder with {ATTR_FILE}, {PARTITION_FILE} and {IMAGE_DIR}/)",
        "data_dir",
    )


def read_attributes(path: Path) -> tuple[list[str], list[str], torch.Tensor]:
    """(attribute names, file names, (N, A) uint8 flags) from list_attr_celeba.txt."""
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"cannot read {path}: {e}") from e
    if len(lines) < 2:
        raise DataError(f"{path}: expected a count line and a header line of attribute names")
    names = lines[1].split()
    files, rows = [], []
    for lineno, line in enumerate(lines[2:], start=3):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != len(names) + 1 or any(v not in ("1", "-1") for v in parts[1:]):
            raise DataError(
                f"{path}:{lineno}: expected a file name and {len(names)} values of 1 or -1"
            )
        files.append(parts[0])
        rows.append([v == "1" for v in parts[1:]])
    flags = torch.tensor(rows, dtype=torch.uint8).reshape(len(rows), len(names))
    return names, files, flags


def read_partition(path: Path) -> dict[str, int]:
    """file name -> split number from list_eval_partition.txt."""
    if not path.exists():
        raise DataError(f"missing {path}; CelebA needs {PARTITION_FILE} beside {ATTR_FILE}")
    out = {}
    for lineno, line in enumerate(path.read_text().splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
            raise DataError(f"{path}:{lineno}: expected `file split` with split 0, 1 or 2")
        out[parts[0]] = int(parts[1])
    return out


class CelebA(Dataset):
    """One split of CelebA; images are read lazily, center-cropped and resized."""

    def __init__(self, root: str | Path, split: str = "train", image_size: int = 64):
        self.root = find_root(root)
        self.image_size = image_size
        self.attr_names, files, flags = read_attributes(self.root / ATTR_FILE)
        partition = read_partition(self.root / PARTITION_FILE)
        missing = [f for f in files if f not in partition]
        if missing:
            raise DataError(f"{self.root / PARTITION_FILE}: no split given for {missing[0]}")
        keep = [i for i, f in enumerate(files) if partition[f] == SPLITS[split]]
        self.files = [files[i] for i in keep]
        self.labels = flags[keep] if keep else flags[:0]  # (N, 40) uint8
        self.ids = torch.arange(len(self.files))
        self._index: dict[str, int] | None = None  # file name -> position, built on first use
        image_dir = self.root / IMAGE_DIR
        if self.files and not (image_dir / self.files[0]).exists():
            raise DataError(f"missing {image_dir / self.files[0]}; is {IMAGE_DIR}/ unpacked?")

    def attribute_index(self, name: str) -> int:
        if name not in self.attr_names:
            raise DataError(
                f"unknown CelebA attribute {name!r}{suggest(name, self.attr_names)}; "
                f"the attributes are: {', '.join(self.attr_names)}"
            )
        return self.attr_names.index(name)

    def ids_of_files(self, names: list[str], missing_ok: bool = False) -> torch.Tensor:
        if self._index is None:
            self._index = {f: i for i, f in enumerate(self.files)}
        index = self._index
        unknown = [n for n in names if n not in index]
        if unknown and not missing_ok:
            raise DataError(f"{unknown[0]} is not an image of this CelebA split")
        found = [index[n] for n in names if n in index]
        return self.ids[torch.tensor(found, dtype=torch.long)]

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int):
        path = self.root / IMAGE_DIR / self.files[i]
        try:
            raw = path.read_bytes()
        except OSError as e:
            raise DataError(f"cannot read image {path}: {e.strerror}") from None
        x = decode(raw, path, self.image_size, 3, crop=CROP)  # (3, S, S) uint8, as a folder's
        return x.float() / 255.0, self.labels[i], self.ids[i]

    def subset(self, positions: torch.Tensor) -> CelebA:
        out = object.__new__(CelebA)
        out.__dict__.update(self.__dict__)
        pos = positions.tolist()
        out.files = [self.files[p] for p in pos]
        out.labels = self.labels[positions]
        out.ids = self.ids[positions]
        out._index = None
        return out
