"""Which device to run on, and seeding that makes runs repeatable."""

from __future__ import annotations

import os
import random

import torch

from unlearn_cli import distributed
from unlearn_cli.errors import UsageError


def resolve_device(name: str = "auto") -> torch.device:
    """The device this process runs on, and under torchrun its place in the process group.

    `auto` picks CUDA when available; asking for CUDA without it is a clear error. Under
    torchrun, `auto` and `cuda` mean this rank's GPU (cuda:LOCAL_RANK), and the process joins
    the group: nccl on CUDA, gloo on CPU."""
    device = _named_device(name)
    distributed.join(device)
    return device


def _named_device(name: str) -> torch.device:
    if name == "auto":
        if not torch.cuda.is_available():
            return torch.device("cpu")
        if not distributed.launched():
            return torch.device("cuda")
        name = "cuda"
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise UsageError(f"{name}: no CUDA device is available here; use cpu or auto", "device")
        if name == "cuda":
            name = f"cuda:{distributed.local_rank()}"  # rank r of a node drives its GPU r
        elif distributed.launched() and int(os.environ.get("LOCAL_WORLD_SIZE", "1")) > 1:
            raise UsageError(
                f"{name}: under torchrun every rank would take that one GPU; use cuda or auto "
                "(rank r of a machine takes cuda:r)",
                "device",
            )
        index = int(name.split(":")[1]) if name.split(":")[1].isdigit() else 0
        if index >= torch.cuda.device_count():
            raise UsageError(f"{name}: only {torch.cuda.device_count()} CUDA device(s)", "device")
        return torch.device("cuda", index)
    raise UsageError(f"{name!r}: use auto, cpu, cuda or cuda:N", "device")


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python and torch (all devices) and make cuDNN pick deterministic kernels; return a
    CPU generator for data order.

    Without the latter, the convolutional judge trained with one seed came out different on two
    GPU machines (docs/benchmarks.md, "On a GPU"); the MLP VAE did not."""
    random.seed(seed)
    torch.manual_seed(seed)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    return torch.Generator().manual_seed(seed)
