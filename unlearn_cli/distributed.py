"""One process or many: what torchrun tells a process, and the few collectives the engine needs.

`torchrun --nproc-per-node N -m unlearn_cli ...` starts N copies of the command with RANK,
WORLD_SIZE and LOCAL_RANK in their environment; `join()` (called when the command resolves its
device) makes them one process group, gloo on CPU and nccl on CUDA. Every helper here is the
identity on a single process, so the engine's code reads the same either way:

- `shard_rows(n, batch_size)`: the contiguous rows of n whose batches this rank computes;
- `gather_batches(bs)`: every rank's batches back in global order, on every rank;
- `mean_(t)`: the mean of a tensor over ranks, in place (gradients);
- `is_main()`: rank 0, the only rank that writes files and prints.

Nothing here is torch.distributed's own launcher or data sampler: those are used as they are.
"""

from __future__ import annotations

import atexit
import contextlib
from dataclasses import dataclass

import torch
import torch.distributed as dist

from unlearn_cli.launch import env_rank, launched, local_rank


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0
    backend: str | None = None  # None: a single process, no process group

    def to_dict(self) -> dict:
        return {"world_size": self.size, "backend": self.backend}


def active() -> bool:
    return dist.is_available() and dist.is_initialized()


def world() -> World:
    if not active():
        return World()
    return World(dist.get_rank(), dist.get_world_size(), local_rank(), dist.get_backend())


def is_main() -> bool:
    return world().rank == 0 if active() else env_rank() == 0


def join(device: torch.device) -> World:
    """Join torchrun's process group once, with the backend that suits `device`: nccl for CUDA,
    gloo for CPU. A process that torchrun did not start stays alone."""
    if not launched() or active():
        return world()
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend=backend)
    atexit.register(leave)
    return world()


def leave(together: bool = False) -> None:
    """Leave the process group. `together` (a command that ends without an error): every rank
    first waits for the others, so that none tears its connections down while a peer still uses
    them (once in CI, rank 0 aborted in teardown after writing its output). After an error the
    peers may never arrive, so the atexit call leaves at once; a peer that is already gone ends
    the wait too."""
    if not active():
        return
    if together:
        with contextlib.suppress(RuntimeError):  # a peer left with an error: nothing to wait for
            dist.barrier()
    dist.destroy_process_group()


def shard_rows(n: int, batch_size: int) -> tuple[int, int]:
    """The rows [lo, hi) of n rows, in batches of `batch_size`, that this rank computes: a
    contiguous block of whole batches, so that every batch is the batch a single process
    would have computed, and the blocks in rank order are the rows in order."""
    w = world()
    if w.size == 1:
        return 0, n
    batches = -(-n // batch_size)
    base, extra = divmod(batches, w.size)  # the first `extra` ranks take one batch more
    first = w.rank * base + min(w.rank, extra)
    count = base + (1 if w.rank < extra else 0)
    return min(n, first * batch_size), min(n, (first + count) * batch_size)


def gather_batches(batches: list[torch.Tensor], device: torch.device) -> list[torch.Tensor]:
    """Every rank's batches, in rank order, on every rank, on `device` (the same on every rank
    whether or not it computed any: a rank may have computed fewer batches, or none)."""
    w = world()
    if w.size == 1:
        return batches
    parts: list = [None] * w.size
    # pickled between our own processes only; a user's file is never unpickled
    dist.all_gather_object(parts, [b.cpu() for b in batches])
    return [b.to(device) for part in parts for b in part]


def mean_(t: torch.Tensor) -> torch.Tensor:
    """`t` replaced by its mean over the ranks (in place), and returned."""
    if world().size > 1:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        t /= world().size
    return t


def sum_(t: torch.Tensor) -> torch.Tensor:
    if world().size > 1:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def rank_seed(seed: int) -> int:
    """The seed of this rank's random draws (reparameterisation noise): `seed` on rank 0 and on
    a single process, another stream on every other rank, so that the ranks' shares of a
    global batch do not all get the same noise."""
    return seed + 1_000_003 * world().rank


def decorrelate(seed: int) -> None:
    """Under torchrun, reseed torch's global generators with `rank_seed(seed)`: call it after
    anything that must be the same on every rank (a model's initial weights) and before the
    noise each rank draws for its share of a batch. Nothing changes on a single process."""
    if world().size > 1:
        torch.manual_seed(rank_seed(seed))


def same_weights_(model: torch.nn.Module) -> torch.nn.Module:
    """Rank 0's parameters and buffers on every rank (in place): after work that every rank
    did alone, so that they hold one model even where GPU kernels are not deterministic."""
    if world().size > 1:
        for t in [*model.parameters(), *model.buffers()]:
            dist.broadcast(t.data, src=0)
    return model


def broadcast(value):
    """Rank 0's `value` on every rank (any picklable value of our own making)."""
    if world().size == 1:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier() -> None:
    if world().size > 1:
        dist.barrier()
