"""What a model was trained on, precisely enough to load it again from a checkpoint alone."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

from unlearn_cli.defaults import MNIST_DIGITS
from unlearn_cli.errors import DataError

if TYPE_CHECKING:
    from unlearn_cli.data.images import Samples

DATASETS = ("mnist", "celeba")


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset, its subset and its preprocessing; travels in checkpoint metadata."""

    name: str = "mnist"  # "mnist" or "celeba"
    root: str | None = None  # None: the embedded MNIST copy; CelebA always needs a root
    split: str = "train"
    classes: tuple[int, ...] | None = None  # MNIST digits in use; None means all ten
    attribute: str | None = None  # CelebA attribute a judge classifies; None for a VAE
    exclude: tuple[dict, ...] = ()  # forget requests left out of training (--exclude)
    limit: int | None = None  # keep only the first N samples of each split (quick runs, tests)
    image_size: int = field(init=False)
    channels: int = field(init=False)
    transform: str = field(init=False)

    def __post_init__(self):
        if self.name not in DATASETS:
            raise DataError(f"unknown dataset {self.name!r}; use one of: {', '.join(DATASETS)}")
        if self.name == "celeba" and self.root is None:
            raise DataError(
                "CelebA cannot be shipped with the tool; point data_dir at your copy", "data_dir"
            )
        mnist = self.name == "mnist"
        object.__setattr__(self, "image_size", 28 if mnist else 64)
        object.__setattr__(self, "channels", 1 if mnist else 3)
        transform = "uint8/255" if mnist else "center_crop(148),resize(64),uint8/255"
        object.__setattr__(self, "transform", transform)
        if self.classes is not None:
            object.__setattr__(self, "classes", tuple(sorted(set(self.classes))))
        if self.limit is not None and self.limit < 1:
            raise DataError(f"must be at least 1, got {self.limit}", "limit")

    @property
    def digits(self) -> tuple[int, ...]:
        """The MNIST digits in use: `classes`, or all ten."""
        return self.classes if self.classes is not None else MNIST_DIGITS

    @property
    def num_classes(self) -> int:
        """Classes a judge of this dataset tells apart: the digits in use, or attribute yes/no."""
        return len(self.digits) if self.name == "mnist" else 2

    def describe(self) -> str:
        where = "embedded" if self.root is None else self.root
        what = ""
        if self.classes is not None:
            what = " digits " + ",".join(map(str, self.classes))
        if self.attribute:
            what += f" attribute {self.attribute}"
        if self.limit:
            what += f", first {self.limit}"
        return f"{self.name}{what} ({where})"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["classes"] = list(self.classes) if self.classes is not None else None
        d["exclude"] = list(self.exclude)
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
        )


def load_split(spec: DatasetSpec, split: str | None = None, root: str | None = None):
    """The samples of `spec` in `split` (default: its own), with `root` overriding its location.

    Exclusions are not applied here: `unlearn_cli.data.requests.training_set` does that.
    """
    split = split or spec.split
    root = root if root is not None else spec.root
    if spec.name == "mnist":
        from unlearn_cli.data.mnist import load_mnist

        data: Samples = load_mnist(root, split, spec.classes)
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
