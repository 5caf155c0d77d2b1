"""Peak memory of an operation: the CPU resident set (Linux resets its high-water mark on
request) and, on CUDA, the most memory torch allocated."""

from __future__ import annotations

import contextlib
import resource
import sys
from pathlib import Path

import torch

from unlearn_cli.engine.files import source_date_epoch

STATUS = Path("/proc/self/status")
CLEAR_REFS = Path("/proc/self/clear_refs")


def reset_peak(device: torch.device) -> None:
    """Start measuring an operation's peak here: Linux's VmHWM is reset by writing 5 to
    clear_refs; elsewhere the peak stays the process's so far (an upper bound)."""
    with contextlib.suppress(OSError):
        CLEAR_REFS.write_text("5")
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_rss_mb() -> float:
    """The process's peak resident set since the last `reset_peak`, in MiB."""
    try:
        for line in STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)  # kB
    except (OSError, ValueError, IndexError):
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kB on Linux, bytes on macOS
    return round(peak / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)


def peak(device: torch.device) -> dict[str, float | None]:
    """{peak_rss_mb, cuda_max_allocated_mb (None off CUDA)} since the last `reset_peak`; both
    None under SOURCE_DATE_EPOCH, as checkpoints record no measured duration there either (the
    file depends on its inputs only)."""
    if source_date_epoch() is not None:
        return {"peak_rss_mb": None, "cuda_max_allocated_mb": None}
    cuda = None
    if device.type == "cuda":
        cuda = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    return {"peak_rss_mb": peak_rss_mb(), "cuda_max_allocated_mb": cuda}
