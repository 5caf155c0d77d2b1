"""Retraining's own noise as the yardstick: two models retrained with different seeds differ
too, and a model no further from the first retraining than the second one is, is as close to
retraining as another retraining would be.

The floor of a metric is its difference between the two references (for FID, the FID between
their samples); the distance is the model's difference from the first reference (for FID, the
FID between the model's samples and the first reference's). `within` says distance <= floor.
"""

from __future__ import annotations

import torch

from unlearn_cli.data.requests import Request
from unlearn_cli.engine.checkpoint import Checkpoint
from unlearn_cli.workflows.targets import Target

# (group, key) of every metric with a floor; "fid_reference" is FID between samples
FLOOR_METRICS = (
    ("privacy", "fratio"),
    ("privacy", "mia_auc"),
    ("utility", "is"),
    ("utility", "fid"),
    ("utility", "precision"),
    ("utility", "recall"),
    ("utility", "retain_elbo"),
    ("utility", "forget_elbo"),
    ("utility", "fid_reference"),
)


def gap(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else abs(a - b)


def floor_of(model: dict, first: dict, second: dict) -> dict:
    """{metric: {floor, distance, within}} from three evaluations of the same target on the
    same samples: the model's, the first reference's and the second's. For fid_reference,
    `model`'s and `second`'s are each FID against the first reference's samples."""
    out = {}
    for group, key in FLOOR_METRICS:
        if key == "fid_reference":
            floor, distance = second[group][key], model[group][key]
        else:
            floor = gap(first[group][key], second[group][key])
            distance = gap(model[group][key], first[group][key])
        within = None if floor is None or distance is None else distance <= floor
        out[key] = {"floor": floor, "distance": distance, "within": within}
    return out


def floor(
    result: dict,
    requests: list[Request],
    first: Checkpoint,
    second: Checkpoint,
    judge: Checkpoint | None,
    tgt: Target | None,
    options: dict,
    device: torch.device,
) -> dict:
    """The floor beside the model's distance for `result` (an evaluation of the model with
    `first` scored as its reference): the first reference and `second` are evaluated on the
    same target, requests, samples and sets (`options`: samples, seed, batch_size, root)."""
    from unlearn_cli.workflows.evaluate import evaluate

    def scored(ckpt: Checkpoint) -> dict:
        return evaluate(
            ckpt, judge, target=tgt, device=device, requests=requests, reference=first, **options
        )

    first_result = {  # the first reference's own values, as `result` scored them
        "privacy": {
            "fratio": result["reference"]["fratio"],
            "mia_auc": result["privacy"]["mia_auc_reference"],
        },
        "utility": result["reference"],
    }
    second_result = scored(second)
    metrics = floor_of(result, first_result, second_result)
    return {
        "second_reference": str(second.path),
        "metrics": metrics,
        "within": [k for k, m in metrics.items() if m["within"]],
    }
