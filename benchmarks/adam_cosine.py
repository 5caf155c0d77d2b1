"""Measure how far Adam's realised surgery step is from the normal plane of g_r.

Surgery hands the optimizer d = -g_f projected so that d . g_r = 0. An SGD step is -lr * d, so
it is orthogonal to g_r and leaves the retain loss unchanged to first order; Adam rescales each
coordinate by its running second moment, so its step is not -lr * d. This script runs the
surgery pass of `unlearn forget --class 1` (the same helpers, seed and batch order as
methods/surgery.py) and records, at every step, the cosine between the realised parameter step
and the g_r of that step, for Adam and for SGD.

    unlearn train --classes 1,3,8 --epochs 2 --limit 3000 --out /tmp/m.safetensors
    python benchmarks/adam_cosine.py /tmp/m.safetensors
"""

from __future__ import annotations

import copy
import math
import statistics
import sys

import torch

from unlearn_cli.api import (
    endless,
    load_checkpoint,
    make_loader,
    make_optimizer,
    scoped_parameters,
    seed_everything,
    split_by_ids,
    surgery_step,
    to_device,
    train_only,
    training_set,
)


def flat(params) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in params]).double()  # (P,)


def cos(a: torch.Tensor, b: torch.Tensor) -> float:
    return (torch.dot(a, b) / (a.norm() * b.norm())).item()


def measure(ckpt, forget, retain, scope: str, optimizer: str, lr: float, batch_size: int = 128):
    """Per step: (cos(step, g_r), cos(step, -d), cos(-g_f, g_r)); SGD gives (0, 1, .) up to
    rounding. The last is the unprojected ascent direction's: what the projection removes."""
    cpu = torch.device("cpu")
    generator = seed_everything(0)
    model = copy.deepcopy(ckpt.model).train()
    params = scoped_parameters(model, scope)
    train_only(model, params)
    opt = make_optimizer(optimizer, params, lr)
    forget_batches = make_loader(forget, batch_size, cpu, True, generator)
    retain_batches = endless(make_loader(retain, batch_size, cpu, True, generator))
    rows = []
    for batch in forget_batches:
        x_f, _, _ = to_device(batch, cpu)
        x_r, _, _ = to_device(next(retain_batches), cpu)
        before = flat(params)
        with torch.random.fork_rng(devices=[]):  # the same ELBO noise as surgery_step's g_f
            g_f = torch.cat([g.reshape(-1) for g in torch.autograd.grad(model.loss(x_f), params)])
        d, g_r, _, _ = surgery_step(model, params, x_f, x_r, "always")
        opt.step()
        step = flat(params) - before
        g_r = g_r.double()
        row = (cos(step, g_r), cos(step, -d.double()), cos(-g_f.double(), g_r))
        if not all(map(math.isfinite, row)):
            break  # the ascent diverged (plain SGD on every parameter does): stop counting
        rows.append(row)
    return rows


def summary(values: list[float]) -> str:
    a = [abs(v) for v in values]
    return f"mean |cos| {statistics.mean(a):.4f}, min {min(a):.4f}, max {max(a):.4f}"


def main(path: str) -> None:
    ckpt = load_checkpoint(path, "vae")
    data = training_set(ckpt.dataset)
    forget, retain = split_by_ids(data, data.ids[data.labels == 1])
    print(f"{path}: {ckpt.dataset.describe()}; D_f {len(forget)}, D_r {len(retain)}")
    for scope in ("decoder", "all"):
        for optimizer in ("adam", "sgd"):
            rows = measure(ckpt, forget, retain, scope, optimizer, lr=5e-4)
            to_g_r = [r[0] for r in rows]
            to_d = [r[1] for r in rows]
            ascent = [r[2] for r in rows]
            print(
                f"params={scope:7s} {optimizer:4s} {len(rows)} steps: cos(step, g_r): "
                f"{summary(to_g_r)}, mean signed {statistics.mean(to_g_r):+.4f}; "
                f"cos(step, -d) mean {statistics.mean(to_d):.4f}, min {min(to_d):.4f}; "
                f"unprojected cos(-g_f, g_r) mean {statistics.mean(ascent):+.4f}"
            )


if __name__ == "__main__":
    torch.set_num_threads(1)
    main(sys.argv[1] if len(sys.argv) > 1 else "/tmp/m.safetensors")
