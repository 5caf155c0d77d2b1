"""What a model was trained on, precisely enough to load it again from a checkpoint alone."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

from unlearn_cli.defaults import MNIST_DIGITS
from unlearn_cli.errors import DataError

if TYPE_CHECKING:
    from unlearn_cli.data.images import Samples

DATASETS = ("mnist", "celeba", "folder")
SIZES = {"mnist": (28, 1), "celeba": (64, 3)}  # (image size, channels) unless told otherwise


# the smallest side a generator of this tool halves to a latent, and the largest it holds in
# memory by the thousand (resize larger images first)
MIN_SIDE, MAX_SIDE = 8, 1024


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset, its subset and its preprocessing; travels in checkpoint metadata."""

    name: str = "mnist"  # "mnist", "celeba" or "folder" (`unlearn_cli.data.folder`)
    root: str | None = None  # None: the embedded MNIST copy; CelebA and folders need a root
    split: str = "train"
    classes: tuple | None = None  # MNIST digits or folder class names in use; None: all
    attribute: str | None = None  # the attribute a judge classifies; None for a VAE
    exclude: tuple[dict, ...] = ()  # forget requests left out of training (--exclude)
    limit: int | None = None  # keep only the first N samples of each split (quick runs, tests)
    image_size: int = 0  # square side after resizing; 0: the dataset's own (MNIST 28, CelebA 64)
    channels: int = 0  # 1 grey, 3 colour; 0: the dataset's own (a folder's from its images)
    holdout: float | None = None  # folder without test/: the share of train/ held out, by hash
    fingerprint: dict | None = None  # folder: its training files when the model was trained
    transform: str = field(init=False)

    def __post_init__(self):
        if self.name not in DATASETS:
            raise DataError(f"unknown dataset {self.name!r}; use one of: {', '.join(DATASETS)}")
        if self.name == "celeba" and self.root is None:
            raise DataError(
                "CelebA cannot be shipped with the tool; point data_dir at your copy", "data_dir"
            )
        if self.name == "folder" and self.root is None:
            raise DataError("a folder dataset needs its folder: point data_dir at it", "data_dir")
        size, channels = SIZES.get(self.name, (self.image_size, self.channels))
        if self.name == "mnist" and self.image_size not in (0, size):
            raise DataError(f"MNIST images are 28x28, not {self.image_size}", "image_size")
        if self.image_size and not MIN_SIDE <= self.image_size <= MAX_SIDE:
            raise DataError(
                f"must be from {MIN_SIDE} to {MAX_SIDE}, got {self.image_size}", "image_size"
            )
        object.__setattr__(self, "image_size", self.image_size or size)
        object.__setattr__(self, "channels", self.channels or channels)
        transforms = {
            "mnist": "uint8/255",
            "celeba": f"center_crop(148),resize({self.image_size}),uint8/255",
            "folder": f"resize({self.image_size}),center_crop({self.image_size}),uint8/255",
        }
        object.__setattr__(self, "transform", transforms[self.name])
        if self.classes is not None:
            object.__setattr__(self, "classes", tuple(sorted(set(self.classes), key=str)))
        if self.limit is not None and self.limit < 1:
            raise DataError(f"must be at least 1, got {self.limit}", "limit")

    @property
    def digits(self) -> tuple[int, ...]:
        """The MNIST digits in use: `classes`, or all ten."""
        return self.classes if self.classes is not None else MNIST_DIGITS

    @property
    def num_classes(self) -> int:
        """Classes a judge of this dataset tells apart: the digits or class folders in use, or
        attribute yes/no."""
        if self.attribute is not None or self.name == "celeba":
            return 2
        return len(self.digits) if self.name == "mnist" else len(self.classes or ())

    def describe(self) -> str:
        where = "embedded" if self.root is None else self.root
        what = ""
        if self.classes is not None:
            shown = ",".join(map(str, self.classes[:6])) + ("..." if len(self.classes) > 6 else "")
            what = (" digits " if self.name == "mnist" else " classes ") + shown
        if self.attribute:
            what += f" attribute {self.attribute}"
        if self.limit:
            what += f", first {self.limit}"
        return f"{self.name}{what} ({where})"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["classes"] = list(self.classes) if self.classes is not None else None
        d["exclude"] = list(self.exclude)
        for k in ("holdout", "fingerprint"):  # a folder's only: other specs read as before
            if d[k] is None:
                del d[k]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> DatasetSpec:
        if not isinstance(d, dict):
            raise ValueError(f"a dataset spec is a mapping, not {type(d).__name__}")
        classes = d.get("classes")
        return cls(
            name=d["name"],
            root=d.get("root"),
            split=d.get("split", "train"),
            classes=tuple(classes) if classes is not None else None,
            attribute=d.get("attribute"),
            exclude=tuple(d.get("exclude", ())),
            limit=d.get("limit"),
            image_size=d.get("image_size", 0),
            channels=d.get("channels", 0),
            holdout=d.get("holdout"),
            fingerprint=d.get("fingerprint"),
        )


def judge_classes(spec: DatasetSpec) -> tuple:
    """The classes of a judge of `spec` in index order: the digits or class folders in use, or
    without/with the attribute."""
    if spec.attribute is not None or spec.name == "celeba":
        return (0, 1)
    return spec.digits if spec.name == "mnist" else tuple(spec.classes or ())


def load_split(spec: DatasetSpec, split: str | None = None, root: str | None = None):
    """The samples of `spec` in `split` (default: its own), with `root` overriding its location.

    Exclusions are not applied here: `unlearn_cli.data.requests.training_set` does that.
    """
    split = split or spec.split
    root = root if root is not None else spec.root
    if spec.name == "mnist":
        from unlearn_cli.data.mnist import load_mnist

        data: Samples = load_mnist(root, split, spec.classes)
    elif spec.name == "folder":
        from unlearn_cli.data.folder import load_folder

        assert root is not None  # DatasetSpec refuses a folder dataset without a root
        data = load_folder(root, split, spec.image_size, spec.channels, spec.classes, spec.holdout)
        if spec.attribute is not None:
            data.attribute_index(spec.attribute)  # fails early, with suggestions, if unknown
    else:
        from unlearn_cli.data.celeba import CelebA

        assert root is not None  # DatasetSpec refuses CelebA without a root
        data = CelebA(root, split, spec.image_size)
        if spec.attribute is not None:
            data.attribute_index(spec.attribute)  # fails early, with suggestions, if unknown
    if spec.limit is not None and spec.limit < len(data):
        import torch

        data = data.subset(torch.arange(spec.limit))
    return data


def folder_spec(spec: DatasetSpec) -> DatasetSpec:
    """A folder dataset's spec with what its folder says filled in: its classes, channels, a
    held-out share when it has no test/, and an image size when none was given (the first
    image's shorter side, at most 64, a multiple of 16 unless it is small and grey)."""
    import dataclasses

    from unlearn_cli.data.folder import HOLDOUT, scan
    from unlearn_cli.defaults import SMALL_GREY

    assert spec.root is not None and spec.name == "folder"
    layout = scan(spec.root)
    size = spec.image_size if spec.image_size else min(layout.first_side, 64)
    if not spec.image_size and not (layout.channels == 1 and size <= SMALL_GREY):
        size = max(16, size // 16 * 16)  # the convolutional VAE halves it four times
    return dataclasses.replace(
        spec,
        classes=spec.classes if spec.classes is not None else layout.classes or None,
        channels=spec.channels or layout.channels,
        image_size=size,
        holdout=spec.holdout if spec.holdout is not None or layout.has_test else HOLDOUT,
    )


def stamped(spec: DatasetSpec, data) -> DatasetSpec:
    """`spec` recording the files of `data` (a folder's split), so that a later run can tell
    whether the folder still holds what the model was trained on."""
    import dataclasses

    found = getattr(data, "fingerprint", None)
    return dataclasses.replace(spec, fingerprint=found) if found is not None else spec


def folder_changes(spec: DatasetSpec, data) -> str | None:
    """In words, how the folder `data` came from differs from the one `spec` was trained on."""
    if spec.name != "folder" or getattr(data, "fingerprint", None) is None:
        return None
    from unlearn_cli.data.folder import changes

    return changes(spec.fingerprint, data.fingerprint, data.root)
