"""Gradient ascent on the forget set: the paper's "Grad. Ascnt." baseline.

The same loop as surgery without the projection: each step follows -g_f, the direction that
raises the training loss on D_f, with nothing to protect D_r. One pass over D_f, Adam, the same
step size as surgery (paper, Appendix A.1: "we keep the same step size ... for fair comparison").
The paper updates every parameter (`params="all"`); the default here is the decoder only, as for
surgery, and the row label says "decoder".
"""

from __future__ import annotations

import copy

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
from unlearn_cli.methods.settings import AscentConfig
from unlearn_cli.methods.steps import make_optimizer, shuffled


class Ascent:
    name = "ascent"
    title = "GRAD. ASCNT. (decoder)"  # the label of the default params

    def title_for(self, cfg: AscentConfig) -> str:
        """The row label of a run with `cfg`: the paper's ascent updates every parameter, so a
        run restricted to the decoder says so."""
        return "GRAD. ASCNT." if cfg.params == "all" else self.title

    def default_config(self, ckpt) -> AscentConfig:
        return AscentConfig(lr=default_lr(ckpt), batch_size=original_batch_size(ckpt))

    def unlearn(
        self, ckpt, forget, retain, cfg: AscentConfig, device, progress, heldout=None
    ) -> Unlearned:
        generator = seed_everything(cfg.seed)
        distributed.decorrelate(cfg.seed)  # under torchrun: each rank its own noise
        model = copy.deepcopy(ckpt.model).to(device).train()
        params = scoped_parameters(model, cfg.params)
        train_only(model, params)  # no gradients for parameters the step leaves alone
        opt = make_optimizer(cfg.optimizer, params, cfg.lr)
        batches = shuffled(forget, cfg.batch_size, device, generator, cfg.seed)
        for epoch in range(cfg.epochs):
            next_epoch(batches, epoch)
            progress.start(f"ascent pass {epoch + 1}/{cfg.epochs}", len(batches))
            for batch in batches:
                x_f, _, _ = to_device(batch, device)
                loss_f = model.loss(x_f)
                opt.zero_grad(set_to_none=True)
                (-loss_f).backward()  # minimising -L_f ascends L_f
                for p in params:  # under torchrun, the global batch's gradient
                    if p.grad is not None:
                        distributed.mean_(p.grad)
                opt.step()
                progress.advance(1, f"forget loss {loss_f.item():.1f}")
            progress.done()
        return Unlearned(model.requires_grad_(True).eval())
