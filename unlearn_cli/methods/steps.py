"""The pieces every gradient method's loop is made of: flat gradients (averaged over the ranks
under torchrun), the projection onto a gradient's normal plane, seeded batches and subsets, and
the optimizer."""

from __future__ import annotations

import itertools

import torch
from torch import nn

from unlearn_cli import distributed
from unlearn_cli.engine.train import make_loader, next_epoch


def flat_grad(loss: torch.Tensor, params: list[nn.Parameter]) -> torch.Tensor:
    """The gradient of `loss` as one (P,) vector, zero for a parameter the loss does not use
    (the encoder, to a loss of the decoder's alone); under torchrun, averaged over the ranks,
    so that it is the gradient of the global batch before anything (a projection) uses it."""
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    flat = torch.cat(
        [(torch.zeros_like(p) if g is None else g).reshape(-1) for g, p in zip(grads, params)]
    )  # (P,)
    return distributed.mean_(flat)


def project(d: torch.Tensor, g_r: torch.Tensor, projection: str = "always") -> torch.Tensor:
    """`d` without its component along `g_r` (always, or only when they conflict)."""
    dot = torch.dot(d, g_r)
    if projection == "conflict" and dot >= 0:
        return d
    return d - dot / g_r.pow(2).sum().clamp_min(1e-30) * g_r


def set_grad(params: list[nn.Parameter], flat: torch.Tensor) -> None:
    """Write a flat (P,) vector into the parameters' .grad, for the optimizer to apply."""
    offset = 0
    for p in params:
        n = p.numel()
        p.grad = flat[offset : offset + n].view_as(p).clone()
        offset += n


def endless(loader):
    """Batches of `loader` for ever, reshuffled on each pass."""
    for epoch in itertools.count():
        next_epoch(loader, epoch)
        yield from loader


def shuffled(data, batch_size: int, device, generator, seed: int):
    """Shuffled batches of `data`; under torchrun, this rank's share of each global batch."""
    return make_loader(data, batch_size, device, True, generator, shard=True, seed=seed)


def sample_of(data, n: int, generator: torch.Generator):
    """A seeded random subset of at most `n` samples of `data`."""
    if len(data) <= n:
        return data
    return data.subset(torch.randperm(len(data), generator=generator)[:n].sort().values)


def make_optimizer(name: str, params, lr: float) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=lr) if name == "adam" else torch.optim.SGD(params, lr=lr)
