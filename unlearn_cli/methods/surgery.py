"""Gradient surgery (Bae, Kim, Jung, Lim 2023): one-shot unlearning that ascends the training
loss on the forget set along the normal plane of the retain gradient.

Each step pairs a forget batch with a retain batch and computes g_f and g_r, the gradients of
the training loss (negative ELBO) on each. The optimizer minimises, so the gradient it is handed
is the negated forget gradient, projected onto the normal plane of g_r:

    d = -g_f,  then  d <- d - (d . g_r / |g_r|^2) g_r

Its step, -lr * d for SGD, raises the forget loss while leaving the retain loss unchanged to
first order. With `projection="conflict"` the projection is applied only when d . g_r < 0
(PCGrad's rule, Yu et al. 2020); the paper projects always. One pass over D_f, Adam. The
paper updates every parameter (`params="all"`); the default here is the decoder only, and the
row label says "decoder" (docs/methods.md, "Which parameters surgery updates").

"Unchanged to first order" holds for SGD only: Adam rescales each coordinate, so its step is
not -lr * d and not orthogonal to g_r: the projection removes most of the first-order effect
on D_r, not all of it (docs/methods.md measures how much; benchmarks/adam_cosine.py).

`repair_steps` (ours, not the paper's; 0 by default) adds the mirror image after the pass:
descent steps on the retain loss whose gradient g_r loses its component along g_f whenever the
two conflict, so that repairing the retained data does not undo the forgetting to first
order. docs/benchmarks.md measures what it buys.
"""

from __future__ import annotations

import copy

import torch

from unlearn_cli import distributed
from unlearn_cli.engine.device import seed_everything
from unlearn_cli.engine.train import next_epoch, to_device
from unlearn_cli.methods import (
    Unlearned,
    default_lr,
    original_batch_size,
    scoped_parameters,
    train_only,
)
from unlearn_cli.methods.settings import SurgeryConfig
from unlearn_cli.methods.steps import (
    endless,
    flat_grad,
    make_optimizer,
    project,
    set_grad,
    shuffled,
)


def surgery_step(model, params, x_f, x_r, projection: str) -> tuple[torch.Tensor, ...]:
    """Hand the optimizer d, the projected negated forget gradient; return (d, g_r, losses)."""
    loss_f = model.loss(x_f)
    g_f = flat_grad(loss_f, params)
    loss_r = model.loss(x_r)
    g_r = flat_grad(loss_r, params)
    d = project(-g_f, g_r, projection)  # d . g_r = 0 (or >= 0 with "conflict")
    set_grad(params, d)  # the optimizer steps along -d: up the forget loss
    return d, g_r, loss_f.detach(), loss_r.detach()


def repair_step(model, params, x_f, x_r) -> tuple[torch.Tensor, ...]:
    """Hand the optimizer g_r without the part that would lower the forget loss; return
    (d, g_f)."""
    g_f = flat_grad(model.loss(x_f), params)
    g_r = flat_grad(model.loss(x_r), params)
    d = project(g_r, -g_f, "conflict")  # a step along -d no longer lowers the forget loss
    set_grad(params, d)
    return d, g_f


class Surgery:
    name = "surgery"
    title = "SURGERY (paper, decoder)"  # the label of the default params

    def title_for(self, cfg: SurgeryConfig) -> str:
        """The row label of a run with `cfg`: the paper's surgery updates every parameter, so a
        run restricted to the decoder says so."""
        return "SURGERY (paper)" if cfg.params == "all" else self.title

    def default_config(self, ckpt) -> SurgeryConfig:
        return SurgeryConfig(lr=default_lr(ckpt), batch_size=original_batch_size(ckpt))

    def unlearn(
        self, ckpt, forget, retain, cfg: SurgeryConfig, device, progress, heldout=None
    ) -> Unlearned:
        generator = seed_everything(cfg.seed)
        distributed.decorrelate(cfg.seed)  # under torchrun: each rank its own noise
        model = copy.deepcopy(ckpt.model).to(device).train()
        params = scoped_parameters(model, cfg.params)
        train_only(model, params)
        opt = make_optimizer(cfg.optimizer, params, cfg.lr)
        forget_batches = shuffled(forget, cfg.batch_size, device, generator, cfg.seed)
        retain_batches = endless(shuffled(retain, cfg.batch_size, device, generator, cfg.seed))
        for epoch in range(cfg.epochs):
            next_epoch(forget_batches, epoch)
            progress.start(f"surgery pass {epoch + 1}/{cfg.epochs}", len(forget_batches))
            for batch in forget_batches:
                x_f, _, _ = to_device(batch, device)
                x_r, _, _ = to_device(next(retain_batches), device)
                _, _, loss_f, loss_r = surgery_step(model, params, x_f, x_r, cfg.projection)
                opt.step()
                progress.advance(1, f"forget loss {loss_f:.1f}  retain loss {loss_r:.1f}")
            progress.done()
        if cfg.repair_steps:
            opt = make_optimizer(cfg.optimizer, params, cfg.lr)  # no momentum from the ascent
            forget_again = endless(forget_batches)
            progress.start("repair", cfg.repair_steps)
            for _ in range(cfg.repair_steps):
                x_f, _, _ = to_device(next(forget_again), device)
                x_r, _, _ = to_device(next(retain_batches), device)
                repair_step(model, params, x_f, x_r)
                opt.step()
                progress.advance(1)
            progress.done()
        return Unlearned(model.requires_grad_(True).eval())
