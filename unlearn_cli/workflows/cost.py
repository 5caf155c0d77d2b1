"""The cost of a model: the wall time and peak memory of the operations that made it, from
its metadata, and the evaluation's own."""

from __future__ import annotations

import time

import torch

from unlearn_cli.engine.checkpoint import Checkpoint
from unlearn_cli.engine.memory import peak, reset_peak
from unlearn_cli.engine.train import start_clock, sync


class Clock:
    """The wall time and peak memory of an evaluation, from here to `stop()`."""

    def __init__(self, device: torch.device):
        self.device = device
        reset_peak(device)
        self.start = start_clock(device)

    def stop(self) -> dict:
        sync(self.device)
        used = peak(self.device)
        return {
            "eval_seconds": round(time.perf_counter() - self.start, 3),
            "eval_peak_rss_mb": used["peak_rss_mb"],
            "eval_cuda_max_allocated_mb": used["cuda_max_allocated_mb"],
        }


def most(entries: list[dict], key: str) -> float | None:
    """The largest `key` recorded among `entries`; None when none recorded it."""
    values = [float(e[key]) for e in entries if e.get(key) is not None]
    return max(values) if values else None


def cost(ckpt: Checkpoint) -> dict:
    """Wall time of what made this model: its forget operations (all of them, summed), else
    its training; and their peak memory (the most of any operation; None where not recorded,
    as by versions before it was)."""
    forgets = ckpt.lineage  # every lineage entry is a forget operation
    if forgets:
        methods = dict.fromkeys(str(e.get("method", "unknown")) for e in forgets)
        devices = dict.fromkeys(str(e.get("device", "unknown")) for e in forgets)
        seconds = sum(float(e.get("wall_seconds", 0.0)) for e in forgets)
        return {
            "seconds": round(seconds, 3),
            "operation": "forget:" + "+".join(methods),
            "device": "+".join(devices),
            "peak_rss_mb": most(forgets, "peak_rss_mb"),
            "cuda_max_allocated_mb": most(forgets, "cuda_max_allocated_mb"),
        }
    return {
        "seconds": float(ckpt.train_seconds),
        "operation": "retrain" if ckpt.dataset.exclude else "train",
        "device": str(ckpt.training.get("device", "unknown")),
        "peak_rss_mb": ckpt.metrics.get("peak_rss_mb"),
        "cuda_max_allocated_mb": ckpt.metrics.get("cuda_max_allocated_mb"),
    }
