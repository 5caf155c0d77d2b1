"""What comes back in a stream: each forget re-checks the classes and attributes that earlier
forgets in the lineage honoured, with no judge, by the -ELBO of a fixed sample of their training
images against the levels recorded when they were forgotten.

A forget of a class or attribute records, per request, the -ELBO of its sample under the model
it started from (`before`) and under the model it wrote (`after`): `request_elbo` in its lineage
entry. Every later forget scores the same images with the same noise under its new model
(`now`), and the share of the way back, (after - now) / (after - before), says how much of what
the forget took away has returned: 0 is still forgotten, 1 is as well explained as before it.
Each forget refits the decoder without revisiting the forgotten region, so a forgotten class can
creep back batch after batch while the retained data's loss stays flat (docs/benchmarks.md,
"Streams of deletion requests").
"""

from __future__ import annotations

import time

import torch
from torch import nn

from unlearn_cli.data.images import Samples, split_by_ids
from unlearn_cli.data.requests import Request, resolve
from unlearn_cli.data.spec import DatasetSpec
from unlearn_cli.engine.files import recorded_seconds
from unlearn_cli.methods.steps import sample_of
from unlearn_cli.workflows.image_sets import probe_losses

RECHECK_SIZE = 256  # training images per request: one batch to score, a mean that holds still
RECHECK_SEED = 0  # the same images at every check, so levels compare (the noise: probe_losses)
COMEBACK = 0.25  # a quarter of the way back to the level before the forget: past sampling noise
# (the images and noise are fixed), well before the class is as well explained as it was
KINDS = ("class", "attribute")  # what is re-checked; samples have membership inference


def rechecked(requests: list[Request]) -> list[Request]:
    """The requests a later forget re-checks: classes and attributes."""
    return [r for r in requests if r.selector in KINDS]


def sample(request: Request, data: Samples, spec: DatasetSpec) -> Samples | None:
    """A fixed, seeded sample of at most RECHECK_SIZE of the training images `request` selects
    in `data`, or None when it selects none (a folder's files removed since)."""
    chosen, _ = split_by_ids(data, resolve(request, data, spec, missing_ok=True))
    if len(chosen) == 0:
        return None
    return sample_of(chosen, RECHECK_SIZE, torch.Generator().manual_seed(RECHECK_SEED))


@torch.no_grad()
def level(model: nn.Module, images: Samples, device: torch.device) -> float:
    """Mean -ELBO of `images` under `model`, with the noise every check uses."""
    return probe_losses(model, images, device).mean().item()


def samples_of(requests: list[Request], data: Samples, spec: DatasetSpec) -> dict[str, Samples]:
    """Each class or attribute request's sample, by request id (none for one selecting none)."""
    picked = {r.id: sample(r, data, spec) for r in rechecked(requests)}
    return {k: v for k, v in picked.items() if v is not None}


def levels(model: nn.Module, samples: dict[str, Samples], device: torch.device) -> dict[str, float]:
    """The mean -ELBO of each request's sample under `model`, by request id."""
    return {k: round(level(model, images, device), 4) for k, images in samples.items()}


def request_elbo(before: dict[str, float], after: dict[str, float]) -> dict[str, dict]:
    """The lineage's `request_elbo`: per request, its sample's -ELBO before and after."""
    return {k: {"before": before[k], "after": after[k]} for k in before}


def comeback(before: float, after: float, now: float) -> float | None:
    """The share of the way back from the forgotten level `after` to the level `before` the
    forget: (after - now) / (after - before). None when the forget did not raise the -ELBO, so
    that there is nothing to come back from (`no_op` says so at the time)."""
    gap = after - before
    return None if gap <= 0 else (after - now) / gap


def recheck(
    lineage: list[dict], data: Samples, spec: DatasetSpec, model: nn.Module, device: torch.device
) -> tuple[list[dict], float]:
    """Re-score every class or attribute request of `lineage` that recorded its levels, under
    `model`: one row per request (`id`, `selector`, `before`, `after`, `now`, `comeback`), and
    the seconds it took. Entries written before the levels were recorded are not re-checked."""
    start = time.perf_counter()
    rows = []
    for entry in lineage:
        recorded = entry.get("request_elbo") or {}
        for r in rechecked([Request.from_dict(d) for d in entry.get("requests", [])]):
            images = sample(r, data, spec) if r.id in recorded else None
            if images is None:
                continue
            then = recorded[r.id]
            now = round(level(model, images, device), 4)
            share = comeback(then["before"], then["after"], now)
            rows.append(
                {
                    "id": r.id,
                    "selector": r.describe(),
                    "before": then["before"],  # under the model it was forgotten from
                    "after": then["after"],  # right after it was forgotten
                    "now": now,  # under the model this forget writes
                    "comeback": None if share is None else round(share, 4),
                }
            )
    return rows, recorded_seconds(time.perf_counter() - start)


def came_back(rows: list[dict]) -> list[dict]:
    """The re-checked requests past COMEBACK of the way back, largest share first."""
    back = [r for r in rows if r["comeback"] is not None and r["comeback"] > COMEBACK]
    return sorted(back, key=lambda r: -r["comeback"])
