"""Programs that tests/test_distributed.py runs under torchrun (this is not a test module).

    python -m torch.distributed.run --standalone --nproc-per-node 2 tests/distributed_worker.py \
        surgery OUT.safetensors
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

import torch
import typer

GLOBAL_BATCH = 16


def tiny_vae():
    from unlearn_cli.models import VAE, VAEConfig

    torch.manual_seed(0)
    cfg = VAEConfig(arch="mlp", channels=1, image_size=28, hidden=(32, 16), latent_dim=4)
    return VAE.from_config(cfg)


def global_batches() -> tuple[torch.Tensor, torch.Tensor]:
    """A forget batch and a retain batch, the same in every process: 2 x (16, 1, 28, 28)."""
    g = torch.Generator().manual_seed(1)
    return tuple(torch.rand(GLOBAL_BATCH, 1, 28, 28, generator=g) for _ in range(2))


@contextlib.contextmanager
def no_noise() -> Iterator[None]:
    """Zero reparameterisation noise inside the block, so that a rank's half batch and the
    single process's whole batch see the same noise; what the test compares is how gradients
    are combined."""
    import unlearn_cli.models.vae as vae_module

    saved = vae_module.cpu_normal
    vae_module.cpu_normal = lambda rows, cols: torch.zeros(rows, cols)
    try:
        yield
    finally:
        vae_module.cpu_normal = saved


def surgery_step_on(rows: slice) -> dict[str, torch.Tensor]:
    """One surgery step (Adam) of the tiny VAE on `rows` of the global batches; its weights."""
    from unlearn_cli.methods import scoped_parameters
    from unlearn_cli.methods.surgery import surgery_step

    model = tiny_vae()
    params = scoped_parameters(model, "decoder")
    opt = torch.optim.Adam(params, lr=1e-3)
    x_f, x_r = global_batches()
    with no_noise():
        surgery_step(model, params, x_f[rows], x_r[rows], "always")
    opt.step()
    return {name: p.detach().clone().contiguous() for name, p in model.named_parameters()}


def surgery(out: str) -> None:
    from safetensors.torch import save_file

    from unlearn_cli import distributed
    from unlearn_cli.engine.device import resolve_device

    resolve_device("cpu")
    w = distributed.world()
    share = GLOBAL_BATCH // w.size
    weights = surgery_step_on(slice(w.rank * share, (w.rank + 1) * share))
    if distributed.is_main():
        save_file(weights, out)
    distributed.leave(together=True)  # as the CLI ends: no rank tears gloo down under another


def fail() -> None:
    """Rank 1 crashes while rank 0 waits for it in a collective."""
    from unlearn_cli import distributed
    from unlearn_cli.cli.output import handle_errors, quiet_unless_main
    from unlearn_cli.engine.device import resolve_device

    @handle_errors
    def work() -> None:
        resolve_device("cpu")
        if distributed.world().rank == 1:
            raise RuntimeError("injected failure")
        distributed.mean_(torch.ones(3))  # never completes: rank 1 is gone

    quiet_unless_main()
    try:
        work()
    except typer.Exit as e:
        sys.exit(e.exit_code)


if __name__ == "__main__":
    {"surgery": surgery, "fail": fail}[sys.argv[1]](*sys.argv[2:])
