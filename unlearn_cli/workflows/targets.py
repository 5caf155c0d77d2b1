"""What an evaluation scores as forgotten: a `Target` (digits, a CelebA attribute or individual
samples), parsed from text or implied by the requests a checkpoint's lineage names.
"""

from __future__ import annotations

from dataclasses import dataclass

from unlearn_cli.data.requests import SELECTORS, Request
from unlearn_cli.data.spec import DatasetSpec
from unlearn_cli.engine.checkpoint import Checkpoint
from unlearn_cli.errors import CheckpointError, UsageError

TARGET_HINT = "use class:DIGIT[,DIGIT...] (MNIST), attr:NAME (CelebA) or samples, e.g. class:1"


@dataclass(frozen=True)
class Target:
    """What the model should have forgotten: digits, a CelebA attribute, or individual samples."""

    kind: str  # "class", "attr" or "samples"
    values: tuple = ()  # digits for "class", attribute names for "attr", nothing for "samples"

    def __str__(self) -> str:
        if self.kind == "samples":
            return "samples"
        return f"{self.kind}:{','.join(map(str, self.values))}"

    def request(self) -> Request:
        """The deletion request that selects the same samples."""
        return Request("target", "class" if self.kind == "class" else "attribute", self.values)


def parse_target(text: str) -> Target:
    """'class:1', 'class:1,3', 'attr:Male' or 'samples'."""
    kind, sep, rest = text.strip().partition(":")
    kind = kind.strip().lower()
    items = [p.strip() for p in rest.split(",") if p.strip()]
    if kind == "samples" and not sep:
        return Target("samples")
    if kind == "class" and items and all(p.isdigit() for p in items):
        return Target("class", tuple(sorted({int(p) for p in items})))
    if kind in ("attr", "attribute") and items:
        return Target("attr", tuple(dict.fromkeys(items)))
    raise UsageError(f"--target {text!r}: {TARGET_HINT}")


def forgotten_requests(ckpt: Checkpoint) -> list[Request]:
    """What `ckpt` does not know: the exclusions it was trained without (a retrain reference),
    then every request forgotten since, from its lineage."""
    out = []
    for d in (*ckpt.dataset.exclude, *ckpt.forgotten_requests()):
        selector = next((k for k in SELECTORS if k in d), None)
        if selector is None or "id" not in d:
            raise CheckpointError(
                f"{ckpt.path}: a forget request in its metadata has no id or "
                f"selector ({d!r}); the file was edited or is corrupt"
            )
        values = d[selector] if isinstance(d[selector], list) else [d[selector]]
        out.append(Request.from_dict({**d, selector: values}))
    return out


def default_target(requests: list[Request]) -> Target | None:
    """The target the lineage implies: its classes, else its attributes, else its samples."""
    classes = sorted({c for r in requests if r.selector == "class" for c in r.values})
    if classes:
        return Target("class", tuple(classes))
    attrs = [a for r in requests if r.selector == "attribute" for a in r.values]
    if attrs:
        return Target("attr", tuple(dict.fromkeys(attrs)))
    if any(r.selector in ("indices", "files") for r in requests):
        return Target("samples")
    return None


def check_target(target: Target, spec: DatasetSpec) -> None:
    """A target must name what the model learned, and leave something to retain."""
    if target.kind == "class":
        if spec.name != "mnist":
            raise UsageError(
                f"--target {target}: classes are MNIST digits; on {spec.name} use "
                "attr:NAME, e.g. attr:Male"
            )
        known = spec.classes or tuple(range(10))
        unknown = [c for c in target.values if c not in known]
        if unknown:
            raise UsageError(
                f"--target {target}: the model never learned digit {unknown[0]} "
                f"(its digits: {','.join(map(str, known))})"
            )
        if set(target.values) >= set(known):
            raise UsageError(
                f"--target {target}: that is every digit the model learned, so no "
                "class would be left to retain"
            )
    if target.kind == "attr" and spec.name != "celeba":
        raise UsageError(
            f"--target {target}: {spec.name} has no attributes; use class:DIGIT, e.g. class:1"
        )
