"""The judge as torchmetrics sees it, and the batching every metric shares.

A judge is any module whose forward returns class logits and whose `features(x)` returns its
penultimate layer, `num_features` wide (see unlearn_cli.models.judge).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import torch
from torch import nn

from unlearn_cli import distributed

Images = torch.Tensor | Iterable[torch.Tensor]  # (N, C, H, W) in [0, 1], or batches of them


def batches(images: Images, batch_size: int) -> Iterator[torch.Tensor]:
    """Batches of `images`: a tensor is split into `batch_size` rows; batches pass through.

    Under torchrun a tensor yields this rank's block of batches only, as the evaluation's image
    sources do (workflows.image_sets); whoever consumes them gathers the results with
    `distributed.gather_batches`."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if isinstance(images, torch.Tensor):
        lo, hi = distributed.shard_rows(len(images), batch_size)
        yield from images[lo:hi].split(batch_size)
    else:
        yield from images


def device_of(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


class Computed(nn.Module):
    """The torchmetrics "feature extractor" for judge outputs computed beforehand: it hands them
    on as float64. `num_features` spares torchmetrics its probe with a dummy 299x299 image."""

    def __init__(self, width: int):
        super().__init__()
        self.num_features = width

    def forward(self, outputs: torch.Tensor) -> torch.Tensor:
        return outputs.double()  # (B, width)


@torch.no_grad()
def judge_outputs(judge: nn.Module, images: Images, batch_size: int):
    """(logits, features) of every image, from one pass over the judge: (N, classes) and
    (N, num_features), on the judge's device. Evaluation needs both of 10,000 samples, and the
    judge's convolutions are most of its time."""
    judge.eval()
    device = device_of(judge)
    logits, features = [], []
    for x in batches(images, batch_size):
        x = x.to(device)
        # torch types a Module's attributes as Tensor | Module, hence the ignores
        f = judge.features(x)  # type: ignore[operator]  # (B, C, H, W) -> (B, num_features)
        features.append(f)
        logits.append(judge.head(f) if hasattr(judge, "head") else judge(x))  # type: ignore[operator]  # (B, classes)
    logits = distributed.gather_batches(logits, device)
    features = distributed.gather_batches(features, device)
    if not features:
        raise ValueError("the judge was given no images")
    return torch.cat(logits), torch.cat(features)


@torch.no_grad()
def predict(judge: nn.Module, images: Images, batch_size: int) -> torch.Tensor:
    """The judge's predicted class of every image, (N,) int64 on CPU."""
    judge.eval()
    device = device_of(judge)
    out = [judge(x.to(device)).argmax(1).cpu() for x in batches(images, batch_size)]
    out = distributed.gather_batches(out, torch.device("cpu"))
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.long)
