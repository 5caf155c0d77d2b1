"""MNIST: the embedded copy shipped inside the package, or a user's torchvision root.

The package carries the four official files gzip-compressed (see mnist_raw/README.md for their
provenance and the CC BY-SA 3.0 attribution). At first use they are decompressed into the cache
directory as a torchvision root, read like any other root (by `read_idx`, without importing
torchvision).
"""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import shutil
import struct
from importlib import resources
from pathlib import Path

import torch

from unlearn_cli.data.images import ImageData
from unlearn_cli.errors import DataError

RAW_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
NUM_CLASSES = 10


def cache_dir() -> Path:
    """Where unpacked data lives: $UNLEARN_CACHE_DIR, else $XDG_CACHE_HOME/unlearn, else
    ~/.cache/unlearn."""
    if env := os.environ.get("UNLEARN_CACHE_DIR"):
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(xdg) / "unlearn"


def _expected_md5() -> dict[str, str]:
    text = resources.files("unlearn_cli.data").joinpath("mnist_raw/MD5SUMS.uncompressed")
    pairs = (line.split() for line in text.read_text().splitlines() if line.strip())
    return {name: md5 for md5, name in pairs}


def embedded_root() -> Path:
    """A torchvision MNIST root holding the embedded files, unpacked into the cache on first use."""
    root = cache_dir() / "mnist"
    raw = root / "MNIST" / "raw"
    md5s = _expected_md5()
    names = [n for pair in RAW_FILES.values() for n in pair]
    if all((raw / n).exists() for n in names):
        return root
    try:
        raw.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(
            f"cannot create the data cache {raw} ({e.strerror}); "
            "set UNLEARN_CACHE_DIR to a writable directory"
        ) from e
    packaged = resources.files("unlearn_cli.data").joinpath("mnist_raw")
    for name in names:
        target = raw / name
        if target.exists():
            continue
        data = gzip.decompress(packaged.joinpath(name + ".gz").read_bytes())
        if hashlib.md5(data).hexdigest() != md5s[name]:
            raise DataError(f"the embedded MNIST file {name} is corrupt; reinstall unlearn-cli")
        tmp = target.with_suffix(f".tmp{os.getpid()}")
        tmp.write_bytes(data)
        os.replace(tmp, target)
    return root


def check_root(root: Path) -> None:
    """Fail with the first missing file's name if `root` is not a torchvision MNIST root."""
    raw = root / "MNIST" / "raw"
    for name in (n for pair in RAW_FILES.values() for n in pair):
        if not (raw / name).exists():
            raise DataError(
                f"{root}: missing {raw / name}; point it at a torchvision MNIST root (the "
                "folder that holds MNIST/raw/), or leave it out to use the embedded copy",
                "data_dir",
            )


def download_mnist(root: str) -> None:
    """Fetch MNIST into a torchvision root, only when the user asks (`train --download`)."""
    from torchvision.datasets import MNIST

    try:
        for train in (True, False):
            MNIST(str(Path(root).expanduser()), train=train, download=True)
    except (OSError, RuntimeError) as e:
        raise DataError(
            f"could not download MNIST into {root} ({e}); leave out the data folder to "
            "use the embedded copy"
        ) from None


def read_idx(path: Path) -> torch.Tensor:
    """An IDX file of unsigned bytes (MNIST's format) as a uint8 tensor.

    Read here rather than through torchvision, whose import costs every command about 2 s."""
    data = path.read_bytes()
    if len(data) < 4 or data[:3] != b"\x00\x00\x08":
        raise DataError(f"{path}: not an IDX file of unsigned bytes; is the MNIST root intact?")
    ndim = data[3]
    shape = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    body = data[4 + 4 * ndim :]
    if len(body) != math.prod(shape):
        raise DataError(f"{path}: truncated ({len(body)} bytes for shape {shape})")
    return torch.frombuffer(bytearray(body), dtype=torch.uint8).reshape(shape)


def load_mnist(root: str | None, split: str, classes: tuple[int, ...] | None) -> ImageData:
    """MNIST `split` ("train" or "test") restricted to `classes`; ids are indices in the split."""
    if root is None:
        path = embedded_root()
    else:
        path = Path(root).expanduser()
        check_root(path)
    image_file, label_file = RAW_FILES[split]
    images = read_idx(path / "MNIST" / "raw" / image_file).unsqueeze(1)  # (N, 1, 28, 28)
    labels = read_idx(path / "MNIST" / "raw" / label_file).long()  # (N,)
    ids = torch.arange(len(labels))
    data = ImageData(images, labels, ids)
    if classes is not None:
        keep = torch.isin(labels, torch.tensor(classes))
        data = data.subset(torch.nonzero(keep, as_tuple=True)[0])
    return data


def copy_embedded_to(dest: Path) -> None:
    """Write the embedded files as a torchvision root at `dest` (used by tests and docs)."""
    src = embedded_root() / "MNIST" / "raw"
    (dest / "MNIST" / "raw").mkdir(parents=True, exist_ok=True)
    for f in src.iterdir():
        shutil.copy(f, dest / "MNIST" / "raw" / f.name)
