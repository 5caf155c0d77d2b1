"""What an evaluation scores as forgotten: a `Target` (digits, a CelebA attribute or individual
samples), parsed from text or implied by the requests a checkpoint's lineage names.
"""

from __future__ import annotations

from dataclasses import dataclass

from unlearn_cli.data.requests import Request, class_value
from unlearn_cli.data.spec import DatasetSpec
from unlearn_cli.engine.checkpoint import Checkpoint
from unlearn_cli.errors import UsageError, suggest

TARGET_HINT = (
    "use class:DIGIT[,DIGIT...] (MNIST) or class:NAME (a class folder), attribute:NAME (CelebA "
    "or attributes.csv; attr:NAME for short) or samples, e.g. class:1"
)


@dataclass(frozen=True)
class Target:
    """What the model should have forgotten: classes, an attribute, or individual samples."""

    kind: str  # "class", "attribute" (as the requests' selectors) or "samples" (indices, files)
    values: tuple = ()  # digits or names for "class", names for "attribute", none for "samples"

    def __str__(self) -> str:
        if self.kind == "samples":
            return "samples"
        return f"{self.kind}:{','.join(map(str, self.values))}"

    def request(self) -> Request:
        """The deletion request that selects the same samples."""
        assert self.kind != "samples", "samples are the requests themselves"
        return Request("target", self.kind, self.values)


def parse_target(text: str, setting: str = "target") -> Target:
    """'class:1', 'class:1,3', 'attribute:Male' (or 'attr:Male') or 'samples'; an error names
    `setting`, the one that gave the text."""
    kind, sep, rest = text.strip().partition(":")
    kind = kind.strip().lower()
    items = [p.strip() for p in rest.split(",") if p.strip()]
    if kind == "samples" and not sep:
        return Target("samples")
    if kind == "class" and items:  # digits stay digits (MNIST); a folder's classes match by name
        names = {class_value(p) for p in items}
        return Target("class", tuple(sorted(names, key=str)))
    if kind in ("attr", "attribute") and items:
        return Target("attribute", tuple(dict.fromkeys(items)))
    raise UsageError(f"{text!r}: {TARGET_HINT}", setting)


def absent_requests(ckpt: Checkpoint) -> list[Request]:
    """What `ckpt` does not know: the exclusions it was trained without (a retrain reference),
    then every request forgotten since, from its lineage."""
    return [*ckpt.excluded_requests(), *ckpt.forgotten_requests()]


def default_target(requests: list[Request]) -> Target | None:
    """The target the lineage implies: its classes, else its attributes, else its samples."""
    classes = sorted({c for r in requests if r.selector == "class" for c in r.values}, key=str)
    if classes:
        return Target("class", tuple(classes))
    attrs = [a for r in requests if r.selector == "attribute" for a in r.values]
    if attrs:
        return Target("attribute", tuple(dict.fromkeys(attrs)))
    if any(r.selector in ("indices", "files") for r in requests):
        return Target("samples")
    return None


def check_target(target: Target, spec: DatasetSpec) -> None:
    """A target must name what the model learned, and leave something to retain."""
    if target.kind == "class":
        if spec.name == "celeba" or (spec.name == "folder" and not spec.classes):
            raise UsageError(
                f"{target}: {spec.describe()} has no classes; use attribute:NAME, e.g. "
                "attribute:Male",
                "target",
            )
        mnist = spec.name == "mnist"
        known = tuple(map(str, spec.digits if mnist else spec.classes or ()))
        unknown = [str(c) for c in target.values if str(c) not in known]
        if unknown:
            what = "digit" if mnist else "class"
            raise UsageError(
                f"{target}: the model never learned {what} {unknown[0]}"
                f"{'' if mnist else suggest(unknown[0], known)} (its {what}s: {','.join(known)})",
                "target",
            )
        if {str(c) for c in target.values} >= set(known):
            raise UsageError(
                f"{target}: that is every digit the model learned, so no "
                "class would be left to retain",
                "target",
            )
    if target.kind == "attribute" and spec.name == "mnist":
        raise UsageError(
            f"{target}: {spec.name} has no attributes; use class:DIGIT, e.g. class:1", "target"
        )
