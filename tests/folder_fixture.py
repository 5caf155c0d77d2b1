"""Tiny folder datasets in torchvision's ImageFolder layout, written by the tests.

Each class has its own brightness, so a judge can tell them apart from a few images; the
attribute `Striped` (every other image of each class) draws horizontal stripes across it.
Even-numbered images are PNG, odd ones JPEG.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

CLASSES = ("cat", "dog", "owl")


def image(cls: int, striped: bool, size: int, colour: bool, rng) -> np.ndarray:
    base = 40 + 170 * cls // max(len(CLASSES) - 1, 1)
    pixels = base + rng.integers(-10, 11, size=(size, size))  # (H, W)
    if striped:
        pixels[::4] = 255 - base
    pixels = np.clip(pixels, 0, 255).astype(np.uint8)
    return np.stack([pixels, pixels // 2, 255 - pixels], -1) if colour else pixels


def make_folder(
    root: Path,
    per_class: int = 8,
    test_per_class: int = 2,
    size: int = 16,
    colour: bool = False,
    attributes: bool = True,
    classes: tuple[str, ...] = CLASSES,
    seed: int = 0,
) -> Path:
    """Write DIR/train/<class>/, DIR/test/<class>/ (when `test_per_class`) and attributes.csv."""
    from PIL import Image

    root = Path(root)
    rng = np.random.default_rng(seed)
    rows = []
    for split, count in (("train", per_class), ("test", test_per_class)):
        for k, name in enumerate(classes):
            if not count:
                continue
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                striped = i % 2 == 1
                ext = "png" if i % 2 == 0 else "jpg"
                rel = f"{split}/{name}/{i:03d}.{ext}"
                Image.fromarray(image(k, striped, size, colour, rng)).save(root / rel, quality=95)
                rows.append([rel, int(striped), int(k == 0)])
    if attributes:
        with (root / "attributes.csv").open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["file", "Striped", "Feline"])
            writer.writerows(rows)
    return root


def striped_files(root: Path, split: str = "train") -> list[str]:
    """The paths (relative to `root`) whose row sets Striped."""
    with (root / "attributes.csv").open() as f:
        return [
            r["file"]
            for r in csv.DictReader(f)
            if r["Striped"] == "1" and r["file"].startswith(split)
        ]
