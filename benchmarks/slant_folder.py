"""The attribute path on real images: MNIST written as a folder dataset with a morphometric
attribute, `Slanted`, the nearest substitute for CelebA's Male that can be shipped.

    python benchmarks/slant_folder.py --out runs/slant-data               # all 70,000, 32x32
    unlearn compare benchmarks/slant.yaml --json > runs/slant.json         # the long part
    python benchmarks/bar_table.py runs/slant.json                         # the bar, per seed

Writes DIR/train/<digit>/<index>.png and DIR/test/<digit>/<index>.png (the embedded MNIST's
first --train-count and --test-count images of each split, in order, resized to --size) and
DIR/attributes.csv with one column, Slanted: 1 when the digit leans right.

The slant is Morpho-MNIST's (Castro et al. 2019, "Morpho-MNIST"): from the image's second
central moments, the horizontal shear that makes the digit upright, atan(-mu11 / mu02) with
rows counted downwards, so a digit whose top lies right of its bottom has a positive slant.
Every digit has slanted and upright writers, so Slanted cuts across the classes as Male cuts
across CelebA's identities. The same images and flags on every run: nothing here is random.
"""

from __future__ import annotations

import argparse
import csv
import math
from pathlib import Path

import numpy as np

THRESHOLD = (
    0.19  # radians (11 degrees): Slanted then holds about the share Male holds in CelebA, 42%
)


def slant(image: np.ndarray) -> float:
    """The slant of a (H, W) grey image in radians: positive when it leans right."""
    pixels = image.astype(np.float64)
    total = pixels.sum()
    if total == 0:
        return 0.0
    rows, cols = np.indices(pixels.shape)  # rows grow downwards
    y = rows - (rows * pixels).sum() / total
    x = cols - (cols * pixels).sum() / total
    mu11 = (x * y * pixels).sum() / total
    mu02 = (y * y * pixels).sum() / total
    return math.atan(-mu11 / mu02) if mu02 > 0 else 0.0


def write(out: Path, size: int, counts: dict[str, int | None], threshold: float) -> list[list]:
    """Write the images and attributes.csv under `out`; returns the csv's rows."""
    from PIL import Image

    from unlearn_cli.api import DatasetSpec, load_split

    rows: list[list] = []
    for split, count in counts.items():
        data = load_split(DatasetSpec(name="mnist"), split)
        n = len(data) if count is None else min(count, len(data))
        for i in range(n):
            digit = int(data.labels[i])
            pixels = data.images[i, 0].numpy()  # (28, 28) uint8
            rel = f"{split}/{digit}/{i:05d}.png"
            (out / split / str(digit)).mkdir(parents=True, exist_ok=True)
            img = Image.fromarray(pixels)
            if size != pixels.shape[0]:
                img = img.resize((size, size), Image.Resampling.BILINEAR)
            img.save(out / rel)
            rows.append([rel, int(slant(pixels) > threshold)])
    with (out / "attributes.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["file", "Slanted"])
        writer.writerows(rows)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/slant-data"))
    parser.add_argument("--size", type=int, default=32, help="image side (MNIST's is 28)")
    parser.add_argument("--train-count", type=int, default=None, help="default: all 60,000")
    parser.add_argument("--test-count", type=int, default=None, help="default: all 10,000")
    parser.add_argument("--threshold", type=float, default=THRESHOLD, help="radians")
    args = parser.parse_args(argv)
    if (args.out / "attributes.csv").exists():
        parser.error(f"{args.out} already holds a dataset; remove it or choose another --out")
    counts = {"train": args.train_count, "test": args.test_count}
    rows = write(args.out, args.size, counts, args.threshold)
    share = sum(r[1] for r in rows) / max(len(rows), 1)
    print(f"wrote {len(rows)} images to {args.out}, {share:.1%} Slanted")


if __name__ == "__main__":
    main()
