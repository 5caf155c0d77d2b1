"""The cost of a model: the wall time of the operations that made it, from its metadata."""

from __future__ import annotations

from unlearn_cli.engine.checkpoint import Checkpoint


def cost(ckpt: Checkpoint) -> dict:
    """Wall time of what made this model: its forget operations (all of them, summed), else
    its training."""
    forgets = ckpt.lineage  # every lineage entry is a forget operation
    if forgets:
        methods = dict.fromkeys(str(e.get("method", "unknown")) for e in forgets)
        devices = dict.fromkeys(str(e.get("device", "unknown")) for e in forgets)
        seconds = sum(float(e.get("wall_seconds", 0.0)) for e in forgets)
        return {
            "seconds": round(seconds, 3),
            "operation": "forget:" + "+".join(methods),
            "device": "+".join(devices),
        }
    return {
        "seconds": float(ckpt.train_seconds),
        "operation": "retrain" if ckpt.dataset.exclude else "train",
        "device": str(ckpt.training.get("device", "unknown")),
    }
