"""What a launcher such as torchrun told this process, read from its environment without
importing torch (so `unlearn --help` stays instant). unlearn_cli.distributed builds on it."""

from __future__ import annotations

import os

VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


def launched() -> bool:
    """Started by torchrun (or any launcher that sets its environment variables)."""
    return all(k in os.environ for k in VARIABLES)


def _integer(name: str) -> int:
    value = os.environ.get(name, "0") if launched() else "0"
    return int(value) if value.isdigit() else 0


def env_rank() -> int:
    """This process's rank as the launcher named it (0 without one), before any process group."""
    return _integer("RANK")


def local_rank() -> int:
    """This process's rank on its machine (0 without a launcher)."""
    return _integer("LOCAL_RANK")
