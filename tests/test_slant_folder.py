"""benchmarks/slant_folder.py: the slant of a stroke sheared by hand, and a tiny folder written
from the embedded MNIST that the folder dataset reads with its Slanted attribute."""

from __future__ import annotations

import csv
import math
import runpy
from pathlib import Path

import numpy as np
import pytest

from unlearn_cli.data.spec import DatasetSpec, folder_spec, load_split

SCRIPT = Path(__file__).parent.parent / "benchmarks" / "slant_folder.py"


@pytest.fixture(scope="module")
def script():
    return runpy.run_path(str(SCRIPT))


def stroke(shear: float, size: int = 28) -> np.ndarray:
    """A vertical bar sheared by hand: column x = centre + shear * (height above the centre)."""
    image = np.zeros((size, size), dtype=np.uint8)
    centre = size / 2
    for row in range(4, size - 4):
        col = int(round(centre + shear * (centre - row)))  # rows grow downwards
        image[row, col - 1 : col + 2] = 255
    return image


@pytest.mark.parametrize("shear", [0.4, 0.2, -0.3])
def test_slant_follows_the_shear_drawn_by_hand(script, shear):
    measured = script["slant"](stroke(shear))
    assert math.copysign(1, measured) == math.copysign(1, shear)
    assert measured == pytest.approx(math.atan(shear), abs=0.05)
    assert script["slant"](stroke(0.0)) == pytest.approx(0.0, abs=1e-9)
    assert script["slant"](np.zeros((28, 28))) == 0.0


def test_writes_a_folder_dataset_with_slanted(script, tmp_path):
    out = tmp_path / "slant"
    script["main"](["--out", str(out), "--train-count", "60", "--test-count", "20"])
    with (out / "attributes.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 80 and set(rows[0]) == {"file", "Slanted"}
    assert rows[0]["file"].startswith("train/") and rows[-1]["file"].startswith("test/")
    flags = [int(r["Slanted"]) for r in rows]
    assert 0 < sum(flags) < len(flags)  # Slanted splits the images
    spec = folder_spec(DatasetSpec(name="folder", root=str(out)))
    assert spec.image_size == 32 and spec.channels == 1 and spec.holdout is None
    assert len(spec.classes or ()) == 10
    data = load_split(spec)
    assert data.images.shape[1:] == (1, 32, 32) and len(data) == 60
    slanted = data.labels[:, data.attribute_index("Slanted")].bool()
    by_file = {r["file"]: r["Slanted"] == "1" for r in rows}
    assert slanted.tolist() == [by_file[f] for f in data.files]
    digits = {f.split("/")[1] for f, s in zip(data.files, slanted) if s}
    assert len(digits) > 3  # it cuts across the digits
    with pytest.raises(SystemExit):  # never over an existing dataset
        script["main"](["--out", str(out), "--train-count", "1", "--test-count", "1"])
