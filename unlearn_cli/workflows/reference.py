"""The retrained reference an evaluation compares a model with: it must be a VAE of the same data,
retrained without the forgotten samples.
"""

from __future__ import annotations

import dataclasses

import torch

from unlearn_cli.data.requests import resolve, union
from unlearn_cli.engine.checkpoint import Checkpoint
from unlearn_cli.engine.progress import Progress
from unlearn_cli.errors import CheckpointError, UsageError
from unlearn_cli.workflows.image_sets import EvalSets
from unlearn_cli.workflows.targets import absent_requests


def check_reference(reference: Checkpoint, vae: Checkpoint, role: str = "reference") -> None:
    """A reference (or a shadow model, `role="shadow"`) must be a VAE of the model's dataset
    and digits."""
    r, v = reference.dataset, vae.dataset
    name = reference.path or f"the {role} model"
    what = (
        "the VAE retrained without the forgotten samples"
        if role == "reference"
        else "a VAE trained on data without the forgotten samples and the test split"
    )
    if reference.kind != "vae":
        raise CheckpointError(f"{name}: is a {reference.kind} checkpoint; it must be {what}", role)
    if (r.name, r.classes) != (v.name, v.classes):
        raise UsageError(
            f"{name} was trained on {r.describe()} but the model on "
            f"{v.describe()}; it must be {what}, on the same dataset and digits",
            role,
        )


def saw_forgotten(reference: Checkpoint, sets: EvalSets) -> bool:
    """Whether the reference was trained on some of the forgotten samples (`sets.members`):
    neither its exclusions nor its lineage name them all."""
    full = dataclasses.replace(reference.dataset, exclude=())
    excluded = [r for r in absent_requests(reference) if r.selector in ("indices", "files")]
    ids = union([resolve(r, sets.train, full, missing_ok=True) for r in excluded])
    assert sets.members is not None  # called only when there are members to compare
    return not bool(torch.isin(sets.members.ids, ids).all())


def warn_if_not_retrained(reference: Checkpoint, sets: EvalSets, progress: Progress) -> None:
    """Warn when the reference saw some of the forgotten samples in training."""
    if saw_forgotten(reference, sets):
        progress.log(
            f"warning: the reference {reference.path} was trained on some of the "
            "forgotten samples, so it is not their retrain-from-scratch reference"
        )
