"""U-LiRA on a model's forgotten samples: the per-sample membership test of `metrics.ulira`
against several models retrained without them, on the sets `evaluate` scores membership on
(the forgotten training samples, and the held-out test images of their classes in their mix).

The references' losses do not depend on the model under test: `ulira_null` computes them once,
and `ulira_test` scores any number of models against them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from unlearn_cli import defaults
from unlearn_cli.data.images import Samples
from unlearn_cli.data.requests import Request
from unlearn_cli.engine.checkpoint import Checkpoint
from unlearn_cli.errors import UsageError
from unlearn_cli.metrics import negative_elbo
from unlearn_cli.metrics.ulira import ulira
from unlearn_cli.workflows.image_sets import DataImages, eval_sets, subset
from unlearn_cli.workflows.reference import check_reference, saw_forgotten
from unlearn_cli.workflows.targets import Target

MIN_REFERENCES = 8  # retrainings per sample: a standard deviation from fewer is mostly noise


@dataclass
class ULiraNull:
    """What models retrained without the forgotten samples make of them and of never-seen ones."""

    forgotten: Samples  # the forgotten training samples
    never_seen: Samples  # held-out test images of their classes
    weights: torch.Tensor | None  # (M,) the never-seen images in the forgotten ones' class mix
    forgotten_references: torch.Tensor  # (K, N) each reference's -ELBO of the forgotten samples
    never_seen_references: torch.Tensor  # (K, M) ... and of the never-seen ones
    seed: int  # the ELBO noise, the same for every model scored against it
    batch_size: int


def ulira_null(
    references: list[Checkpoint],
    model: Checkpoint,
    requests: list[Request],
    *,
    seed: int = defaults.EVAL_SEED,
    batch_size: int = defaults.EVAL_BATCH_SIZE,
    device: torch.device | str = "cpu",
    root: str | None = None,
) -> ULiraNull:
    """The references' losses on the samples `requests` forget (indices or files) and on the
    held-out images of their classes. Each reference must be a distinct VAE of `model`'s data
    retrained without the forgotten samples (`unlearn forget --method retrain` with its own
    seed, or `unlearn train --exclude`); two at least, for a standard deviation."""
    device = torch.device(device)
    samples = [r for r in requests if r.selector in ("indices", "files")]
    if not samples:
        raise UsageError("U-LiRA tests forgotten samples: name indices or files", "requests")
    if len(references) < 2:
        raise UsageError(
            f"U-LiRA needs 2 retrained references at least (got {len(references)}); "
            f"{MIN_REFERENCES} or more give a per-sample standard deviation worth testing against",
            "references",
        )
    sets = eval_sets(model.dataset, Target("samples"), samples, root, seed)
    for reference in references:
        check_reference(reference, model)
        methods = {entry.get("method") for entry in reference.lineage}
        if saw_forgotten(reference, sets) or methods - {"retrain"}:
            raise UsageError(
                f"{reference.path or 'a reference'}: not retrained without the forgotten "
                "samples; make each reference with `unlearn forget --method retrain --seed S`",
                "references",
            )
    hashes = [r.sha256 for r in references if r.sha256 is not None]
    if len(set(hashes)) < len(hashes):
        raise UsageError(
            "two references are the same file: retrain each with its own seed", "references"
        )
    assert sets.members is not None and sets.nonmember_mask is not None  # samples: both set
    never_seen = subset(sets.test, sets.nonmember_mask)

    def losses(data: Samples) -> torch.Tensor:  # (K, len(data))
        return torch.stack([nelbo(r.model, data, seed, batch_size, device) for r in references])

    return ULiraNull(
        sets.members,
        never_seen,
        sets.nonmember_weights,
        losses(sets.members),
        losses(never_seen),
        seed,
        batch_size,
    )


def ulira_test(
    model: Checkpoint, null: ULiraNull, device: torch.device | str = "cpu"
) -> dict[str, float | int]:
    """`metrics.ulira.ulira` of `model` against the references of `null`, with the sizes:
    `ulira_references` (K), `ulira_forgotten` (N) and `ulira_never_seen` (M)."""
    device = torch.device(device)
    result: dict[str, float | int] = dict(
        ulira(
            nelbo(model.model, null.forgotten, null.seed, null.batch_size, device),
            null.forgotten_references,
            nelbo(model.model, null.never_seen, null.seed, null.batch_size, device),
            null.never_seen_references,
            null.weights,
        )
    )
    result["ulira_references"] = len(null.forgotten_references)
    result["ulira_forgotten"] = len(null.forgotten)
    result["ulira_never_seen"] = len(null.never_seen)
    return result


def nelbo(
    model: torch.nn.Module, data: Samples, seed: int, batch_size: int, device: torch.device
) -> torch.Tensor:
    """(N,) -ELBO of each image of `data` under `model`, with the noise of `seed`."""
    return negative_elbo(model.to(device), DataImages(data, batch_size, device), batch_size, seed)
