"""A tiny generated CelebA in the official layout, for tests (the real one cannot be shipped).

Male faces are dark images and the others light, so a judge can learn `Male` from a few images.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

ATTRIBUTES = [
    "5_o_Clock_Shadow",
    "Arched_Eyebrows",
    "Attractive",
    "Bags_Under_Eyes",
    "Bald",
    "Bangs",
    "Big_Lips",
    "Big_Nose",
    "Black_Hair",
    "Blond_Hair",
    "Blurry",
    "Brown_Hair",
    "Bushy_Eyebrows",
    "Chubby",
    "Double_Chin",
    "Eyeglasses",
    "Goatee",
    "Gray_Hair",
    "Heavy_Makeup",
    "High_Cheekbones",
    "Male",
    "Mouth_Slightly_Open",
    "Mustache",
    "Narrow_Eyes",
    "No_Beard",
    "Oval_Face",
    "Pale_Skin",
    "Pointy_Nose",
    "Receding_Hairline",
    "Rosy_Cheeks",
    "Sideburns",
    "Smiling",
    "Straight_Hair",
    "Wavy_Hair",
    "Wearing_Earrings",
    "Wearing_Hat",
    "Wearing_Lipstick",
    "Wearing_Necklace",
    "Wearing_Necktie",
    "Young",
]
WIDTH, HEIGHT = 178, 218  # the aligned images' size


def file_name(i: int) -> str:
    """The official name of the i-th image (0-based): 000001.jpg, 000002.jpg, ..."""
    return f"{i + 1:06d}.jpg"


def attributes(n: int = 24, seed: int = 0) -> np.ndarray:
    """The (n, 40) table of 1/-1 values that `make_celeba(root, n, seed)` writes.

    Male alternates (every other image), so each split holds both values; the rest are random.
    """
    rng = np.random.default_rng(seed)
    table = rng.choice(np.array([-1, 1]), size=(n, len(ATTRIBUTES)))
    table[:, ATTRIBUTES.index("Male")] = np.where(np.arange(n) % 2 == 0, 1, -1)
    return table


def partition(n: int = 24) -> list[int]:
    """Split of each image: the last quarter, halved, is valid (1) then test (2), like CelebA."""
    held_out = max(2, n // 4)
    train = n - held_out
    return [0 if i < train else 1 if i < train + held_out // 2 else 2 for i in range(n)]


def make_celeba(root: Path, n: int = 24, seed: int = 0) -> Path:
    """Write img_align_celeba/, list_attr_celeba.txt and list_eval_partition.txt under `root`."""
    from PIL import Image

    root = Path(root)
    image_dir = root / "img_align_celeba"
    image_dir.mkdir(parents=True, exist_ok=True)
    table = attributes(n, seed)
    male = table[:, ATTRIBUTES.index("Male")] == 1
    rng = np.random.default_rng(seed + 1)
    for i in range(n):
        base = 50 if male[i] else 200  # dark for Male, light otherwise
        noise = rng.integers(-30, 31, size=(HEIGHT, WIDTH, 3))
        pixels = np.clip(base + noise, 0, 255).astype(np.uint8)  # (H, W, 3)
        Image.fromarray(pixels).save(image_dir / file_name(i), quality=90)
    rows = [file_name(i) + "".join(f" {v:2d}" for v in table[i]) for i in range(n)]
    # the official file: a count, the names (with a trailing space), then one row per image
    (root / "list_attr_celeba.txt").write_text(
        f"{n}\n" + " ".join(ATTRIBUTES) + " \n" + "\n".join(rows) + "\n"
    )
    splits = partition(n)
    (root / "list_eval_partition.txt").write_text(
        "".join(f"{file_name(i)} {splits[i]}\n" for i in range(n))
    )
    return root
