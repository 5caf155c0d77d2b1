"""A dataset in a folder, in the layout torchvision's `ImageFolder` reads:

    DIR/train/<class>/<image>      the training split (or DIR/<class>/<image> without train/)
    DIR/test/<class>/<image>       the held-out split; without it, a share of train/ is held out
    DIR/attributes.csv             optional: `file,<name>,...` rows, values 0/1 or -1/1

PNG and JPEG, grey or colour, resized (shorter side) and centre-cropped to a square. Without
class folders the images may lie directly in the split's folder, when attributes.csv labels them.

A sample's identity is its path relative to DIR (`train/cat/001.png`), kept as a 63-bit hash of
that path in `ids`: stable when files are added or removed, unlike a position. Labels are flags,
(N, K + A) uint8: one column per class (one-hot), then one per attribute, as CelebA's are.
Images are decoded into memory once, so a corrupt one fails before any work.
"""

from __future__ import annotations

import csv
import hashlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import torch

from unlearn_cli.data.images import ImageData, decode
from unlearn_cli.errors import DataError, suggest

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
ATTR_FILE = "attributes.csv"
HOLDOUT = 0.1  # share of train/ held out when there is no test/: enough to score, little lost
MIN_CLASS_IMAGES = 2  # a class needs an image to learn from and one to keep or hold out
GREY_MODES = ("1", "L", "LA", "I", "I;16", "F")  # PIL modes of single-channel images
ATTR_VALUES = {"1": True, "0": False, "-1": False}  # 0/1, or CelebA's -1/1


def file_id(rel: str) -> int:
    """The identity of the file at `rel` (relative to DIR): 63 bits of its path's sha256."""
    return int.from_bytes(hashlib.sha256(rel.encode()).digest()[:8], "big") >> 1


def held_out(rel: str, share: float) -> bool:
    """Whether `rel` falls in the held-out share: decided by its path alone, so adding files
    never moves another file between the splits."""
    return file_id(rel) % 10_000 < share * 10_000


def split_dir(root: Path, split: str) -> Path:
    if split == "test":
        return root / "test"
    return root / "train" if (root / "train").is_dir() else root


def _is_image(p: Path) -> bool:
    return p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")


def list_images(root: Path, split: str) -> list[tuple[str, str | None]]:
    """(path relative to `root`, class folder or None) of every image of `split`, sorted."""
    where = split_dir(root, split)
    if not where.is_dir():
        raise DataError(f"{root}: no folder {where.name}/; the folder dataset needs DIR/train/")
    subdirs = sorted(d for d in where.iterdir() if d.is_dir() and not d.name.startswith("."))
    if split == "train" and where == root:
        subdirs = [d for d in subdirs if d.name != "test"]
    loose = sorted(p for p in where.iterdir() if _is_image(p))
    if subdirs and loose:
        raise DataError(
            f"{where} holds both class folders and loose images ({loose[0].name}); "
            "put every image in its class's folder"
        )
    if loose:
        return [(p.relative_to(root).as_posix(), None) for p in loose]
    out: list[tuple[str, str | None]] = []
    for d in subdirs:
        images = sorted(p for p in d.rglob("*") if _is_image(p))
        if len(images) < (MIN_CLASS_IMAGES if split == "train" else 1):
            what = "no images" if not images else "only one image"
            raise DataError(
                f"class {d.name!r} ({d}) has {what}; a class needs at least "
                f"{MIN_CLASS_IMAGES} (PNG or JPEG): add images or remove the folder"
            )
        out += [(p.relative_to(root).as_posix(), d.name) for p in images]
    if not out:
        raise DataError(f"{where}: no PNG or JPEG images; put them in DIR/train/<class>/")
    return out


def read_attribute_table(path: Path, known: set[str]) -> tuple[list[str], dict[str, list[bool]]]:
    """(attribute names, file -> flags) from attributes.csv, for the images in `known`; every
    value must be 0, 1 or -1. Rows of images no longer in the folder are passed over."""
    try:
        with path.open(newline="") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DataError(f"cannot read {path}: {e}") from None
    if not rows or not rows[0] or rows[0][0].strip() != "file" or len(rows[0]) < 2:
        raise DataError(f"{path}:1: the header must be `file,<attribute>,...`")
    names = [n.strip() for n in rows[0][1:]]
    table: dict[str, list[bool]] = {}
    for lineno, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        values = [v.strip() for v in row[1:]]
        if len(values) != len(names) or any(v not in ATTR_VALUES for v in values):
            raise DataError(
                f"{path}:{lineno}: expected a file and {len(names)} values of 0/1 or -1/1"
            )
        name = row[0].strip()
        if name not in known:  # an image removed since (a misspelt one has no row: refused)
            continue
        if name in table:
            raise DataError(f"{path}:{lineno}: a second row for {name}")
        table[name] = [ATTR_VALUES[v] for v in values]
    return names, table


@dataclass(frozen=True)
class Layout:
    """What a folder holds, as far as a dataset spec records it."""

    classes: tuple[str, ...]  # class folders, sorted; () when attributes.csv labels a flat folder
    has_test: bool
    channels: int  # 1 when every image is grey, else 3
    first_side: int  # the shorter side of the first image


def scan(root: str | Path) -> Layout:
    """The folder's classes, splits and channels, from its listing and image headers."""
    from PIL import Image

    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"{root}: not a folder; point it at one with train/<class>/", "data_dir")
    files = list_images(root, "train")
    classes = tuple(sorted({c for _, c in files if c is not None}))
    if not classes and not (root / ATTR_FILE).exists():
        raise DataError(
            f"{split_dir(root, 'train')} holds images but no class folders; put them in "
            f"DIR/train/<class>/ or label them in {root / ATTR_FILE}"
        )
    grey, first = True, 0
    for n, (rel, _) in enumerate(files):
        try:
            with Image.open(root / rel) as img:
                grey &= img.mode in GREY_MODES
                first = first or min(img.size)
        except (OSError, ValueError) as e:
            raise DataError(
                f"{root / rel}: not a readable image ({e}); replace or remove it"
            ) from None
        if not grey and n:
            break
    return Layout(classes, (root / "test").is_dir(), 1 if grey else 3, first)


class FolderData(ImageData):
    """One split of a folder dataset, in memory; `files` are the samples' paths."""

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        ids: torch.Tensor,
        files: list[str],
        classes: tuple[str, ...],
        attr_names: list[str],
        root: Path,
        fingerprint: dict,
    ):
        super().__init__(images, labels, ids)
        self.files: list[str] = files
        self.classes: tuple[str, ...] = classes  # columns 0..K-1 of labels
        self.attr_names: list[str] = attr_names  # columns K.. of labels
        self.root: Path = root
        self.fingerprint: dict = fingerprint  # of the whole split as read (see `fingerprint`)

    def subset(self, positions: torch.Tensor) -> FolderData:
        files = [self.files[p] for p in positions.tolist()]
        return FolderData(
            self.images[positions],
            self.labels[positions],
            self.ids[positions],
            files,
            self.classes,
            self.attr_names,
            self.root,
            self.fingerprint,
        )

    def attribute_index(self, name: str) -> int:
        """The column of labels that holds attribute `name`."""
        if not self.attr_names:
            raise DataError(
                f"{self.root} has no {ATTR_FILE}, so no attributes; add one with a header "
                "`file,<attribute>,...`, or forget a class"
            )
        if name not in self.attr_names:
            raise DataError(
                f"unknown attribute {name!r}{suggest(name, self.attr_names)}; the attributes "
                f"of {self.root / ATTR_FILE} are: {', '.join(self.attr_names)}"
            )
        return len(self.classes) + self.attr_names.index(name)

    def class_index(self, name: str) -> int:
        """The column of labels (and the judge's class) of class folder `name`."""
        if name not in self.classes:
            known = ", ".join(self.classes) or "none (the folder has no class folders)"
            hint = suggest(name, self.classes)
            raise DataError(f"unknown class {name!r}{hint}; the classes: {known}")
        return self.classes.index(name)

    def ids_of_files(self, names: list[str], missing_ok: bool = False) -> torch.Tensor:
        """The identities of the files `names` (paths relative to the folder)."""
        index = {f: i for i, f in enumerate(self.files)}
        unknown = [n for n in names if n not in index]
        if unknown and not missing_ok:
            name = unknown[0]
            if not (self.root / name).exists():
                raise DataError(
                    f"{name} is not in {self.root} (removed since training?); a deletion "
                    "request can only be honoured while its images can still be read: restore "
                    "the file, or retrain without it (`unlearn train --exclude`)"
                )
            raise DataError(f"{name} is not a training image of {self.root}")
        found = [index[n] for n in names if n in index]
        return self.ids[torch.tensor(found, dtype=torch.long)]


def fingerprint(entries: list[tuple[str, bytes]], labels: torch.Tensor) -> dict:
    """How many files, a digest of their paths, one of their paths and contents, and one of
    their paths and labels (`labels` (N, K + A), in the order of `entries`): an edited
    attributes.csv changes what an attribute request selects."""
    names = hashlib.sha256("\n".join(rel for rel, _ in entries).encode())
    contents, labelled = hashlib.sha256(), hashlib.sha256()
    for (rel, raw), row in zip(entries, labels.tolist(), strict=True):
        contents.update(rel.encode() + b"\0" + hashlib.sha256(raw).digest())
        labelled.update(rel.encode() + b"\0" + bytes(row))
    return {
        "files": len(entries),
        "names_sha256": names.hexdigest(),
        "content_sha256": contents.hexdigest(),
        "labels_sha256": labelled.hexdigest(),
    }


def changes(recorded: dict | None, now: dict, root: str | Path) -> str | None:
    """What changed in the folder since `recorded` was taken, in words, or None."""
    if not recorded:
        return None
    said = []
    same_names = recorded.get("names_sha256") == now["names_sha256"]
    if recorded.get("content_sha256") != now["content_sha256"]:
        said.append(
            f"images were edited since the model was trained (same {now['files']} files)"
            if same_names
            else f"{now['files']} training images now, {recorded.get('files')} when the model "
            "was trained (files added or removed)"
        )
    # checkpoints from before labels were recorded carry no digest of them
    if same_names and recorded.get("labels_sha256", now["labels_sha256"]) != now["labels_sha256"]:
        said.append(
            f"{ATTR_FILE} labels the training images differently from when the model was trained"
        )
    return f"{root}: " + "; ".join(said) if said else None


def load_folder(
    root: str | Path,
    split: str,
    image_size: int,
    channels: int,
    classes: tuple[str, ...] | None = None,
    holdout: float | None = None,
) -> FolderData:
    """`split` ("train" or "test") of the folder at `root`; with `holdout`, the test split is
    that share of train/ (by `held_out`) and the train split the rest."""
    root = Path(root).expanduser()
    if split == "test" and holdout is None and not (root / "test").is_dir():
        raise DataError(f"{root}: no test/ folder and no held-out share recorded")
    train = list_images(root, "train")
    test = list_images(root, "test") if (root / "test").is_dir() else []
    entries = test if split == "test" and holdout is None else train
    if holdout is not None:
        entries = [e for e in entries if held_out(e[0], holdout) == (split == "test")]
    known = tuple(sorted({c for _, c in train if c is not None}))
    classes = tuple(classes) if classes is not None else known
    for c in {c for _, c in entries if c is not None} - set(known):
        raise DataError(f"{root}/test/{c}: not a class of train/; rename or remove it")
    missing = [c for c in classes if c not in known]
    if missing:
        raise DataError(
            f"{root}: no class folder {missing[0]!r}{suggest(missing[0], known)} (the model was "
            f"trained on classes {', '.join(classes)})"
        )
    entries = [e for e in entries if e[1] is None or e[1] in classes]
    kept = Counter(c for _, c in entries)
    empty = [c for c in classes if kept[c] == 0]
    if split == "train" and holdout is not None and empty:
        raise DataError(
            f"class {empty[0]!r} has no training images once {holdout:.0%} of "
            f"{split_dir(root, 'train')} is held out (there is no {root / 'test'}/ folder): add "
            "images to it, or give the folder a test/ split"
        )
    attr_names: list[str] = []
    table: dict[str, list[bool]] = {}
    if (root / ATTR_FILE).exists():
        attr_names, table = read_attribute_table(root / ATTR_FILE, {r for r, _ in train + test})
        unlabelled = [rel for rel, _ in entries if rel not in table]
        if unlabelled:
            raise DataError(
                f"{root / ATTR_FILE}: no row for {unlabelled[0]}; give every image one (the file "
                "column holds paths relative to the folder, e.g. train/cat/001.png)"
            )
    raws = []
    for rel, _ in entries:
        try:
            raws.append((rel, (root / rel).read_bytes()))
        except OSError as e:
            raise DataError(f"cannot read {root / rel}: {e.strerror}") from None
    images = torch.zeros(0, channels, image_size, image_size, dtype=torch.uint8)
    if raws:  # (N, C, S, S)
        images = torch.stack([decode(raw, root / rel, image_size, channels) for rel, raw in raws])
    labels = torch.zeros(len(entries), len(classes) + len(attr_names), dtype=torch.uint8)
    for i, (rel, cls) in enumerate(entries):  # (N, K + A): class one-hot, then attributes
        if cls is not None:
            labels[i, classes.index(cls)] = 1
        if attr_names:
            labels[i, len(classes) :] = torch.tensor(table[rel], dtype=torch.uint8)
    ids = torch.tensor([file_id(rel) for rel, _ in entries], dtype=torch.long)
    files = [rel for rel, _ in entries]
    return FolderData(
        images, labels, ids, files, classes, attr_names, root, fingerprint(raws, labels)
    )
