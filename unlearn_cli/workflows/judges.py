"""The judge classifier an evaluation scores samples with: it must classify what the model
generates, and be accurate enough to trust.
"""

from __future__ import annotations

import shlex

from unlearn_cli.data.spec import judge_classes
from unlearn_cli.engine.checkpoint import Checkpoint
from unlearn_cli.errors import CheckpointError, UsageError
from unlearn_cli.workflows.targets import Target

MIN_JUDGE_ACCURACY = 0.95  # the paper only trusts a classifier above 95% (its Appendix A)


def check_judge(judge: Checkpoint, vae: Checkpoint, target: Target | None) -> None:
    """A judge must classify what the model generates: the same dataset, the same digits, or
    (CelebA) the attribute being scored."""
    j, v = judge.dataset, vae.dataset
    name = judge.path or "the judge"
    if judge.kind != "judge":
        raise CheckpointError(
            f"{name}: is a {judge.kind} checkpoint, not a judge; train "
            "one with `unlearn train --model judge`",
            "judge",
        )
    if j.name != v.name:
        raise UsageError(
            f"{name} was trained on {j.name} but the model on {v.name}; "
            f"train a judge on {v.name} with `unlearn train --model judge`",
            "judge",
        )
    if (j.channels, j.image_size) != (v.channels, v.image_size):
        raise UsageError(
            f"{name} classifies {shape(j)} images but the model draws {shape(v)} ones; train "
            f"a judge at the model's size: `unlearn train --model judge{data_args(v)} "
            f"--image-size {v.image_size}`",
            "judge",
        )
    if j.attribute is None and v.name != "celeba" and judge_classes(j) != judge_classes(v):
        digits = ",".join(map(str, judge_classes(v)))
        what = "digits" if v.name == "mnist" else "classes"
        raise UsageError(
            f"{name} tells {what} {','.join(map(str, judge_classes(j)))} apart but the "
            f"model learned {what} {digits}; train a matching judge: "
            f"`unlearn train --model judge{data_args(v)} --classes {digits}`",
            "judge",
        )
    if target is not None and target.kind == "class" and j.attribute is not None:
        raise UsageError(
            f"{name} classifies the attribute {j.attribute}, but the target is {target}; "
            f"score classes with a judge of the classes: `unlearn train --model "
            f"judge{data_args(v)}`",
            "judge",
        )
    if target is not None and target.kind == "attribute" and len(target.values) > 1:
        raise UsageError(
            f"{target}: a judge classifies one attribute; score one at a time, e.g. "
            f"attribute:{target.values[0]} with a judge of {target.values[0]}",
            "target",
        )
    if target is not None and target.kind == "attribute" and j.attribute != target.values[0]:
        raise UsageError(
            f"{name} classifies {j.attribute} but the target is {target}; train one: "
            f"`unlearn train --model judge{data_args(v)} --attribute {target.values[0]}`",
            "judge",
        )


def untrusted_judge(path, accuracy: float | None) -> str | None:
    """A warning when a judge's held-out accuracy is unknown or below MIN_JUDGE_ACCURACY."""
    if accuracy is None:
        return (
            f"judge {path} has no recorded held-out accuracy; fratio, IS and FID cannot be trusted"
        )
    if accuracy < MIN_JUDGE_ACCURACY:
        return (
            f"judge {path} is only {accuracy:.1%} accurate on held-out data (below "
            f"{MIN_JUDGE_ACCURACY:.0%}): fratio, IS and FID cannot be trusted; train it "
            "longer or on more data (`unlearn train --model judge --epochs N`)"
        )
    return None


def shape(spec) -> str:
    """A dataset's images in words: "grey 28x28", "colour 64x64"."""
    return f"{'grey' if spec.channels == 1 else 'colour'} {spec.image_size}x{spec.image_size}"


def data_args(spec) -> str:
    """The `unlearn train` options that name a dataset read from disk, or "" for MNIST."""
    if spec.name == "mnist":
        return ""
    return f" --dataset {spec.name} --data-dir {shlex.quote(spec.root or 'DIR')}"
