"""The judge as torchmetrics sees it, and the batching every metric shares.

A judge is any module whose forward returns class logits and whose `features(x)` returns its
penultimate layer, `num_features` wide (see unlearn_cli.models.judge).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import torch
from torch import nn

Images = torch.Tensor | Iterable[torch.Tensor]  # (N, C, H, W) in [0, 1], or batches of them


def batches(images: Images, batch_size: int) -> Iterator[torch.Tensor]:
    """Batches of `images`: a tensor is split into `batch_size` rows; batches pass through."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if isinstance(images, torch.Tensor):
        yield from images.split(batch_size)
    else:
        yield from images


def device_of(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


class JudgeFeatures(nn.Module):
    """The judge's penultimate layer as a torchmetrics FID feature extractor.

    `num_features` is set so that torchmetrics takes the width from it instead of probing the
    module with a dummy 299x299 image. Features come out as float64.
    """

    def __init__(self, judge: nn.Module):
        super().__init__()
        self.judge = judge
        self.num_features = int(judge.num_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.judge.features(x).double()  # (B, C, H, W) -> (B, num_features)


class JudgeLogits(nn.Module):
    """The judge's class logits as a torchmetrics Inception Score extractor, as float64."""

    def __init__(self, judge: nn.Module):
        super().__init__()
        self.judge = judge

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.judge(x).double()  # (B, C, H, W) -> (B, classes)


@torch.no_grad()
def predict(judge: nn.Module, images: Images, batch_size: int) -> torch.Tensor:
    """The judge's predicted class of every image, (N,) int64 on CPU."""
    judge.eval()
    device = device_of(judge)
    out = [judge(x.to(device)).argmax(1).cpu() for x in batches(images, batch_size)]
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.long)
