"""UNO (Mandal and Gottwald 2025, arXiv 2506.04712, "Unlearning via Orthogonalization in
Generative Models"), a baseline, as its authors' code (github.com/pinakm9/forget,
modules/mnist/vae_ortho.py) runs it on a VAE. Its classifier, our judge, sits in its loss.

A batch z of prior latents is drawn once and kept. Each step pairs a forget batch x_f with a
retain batch x_r, has the judge classify the decoded z, and descends with Adam, over every
parameter (encoder and decoder, as the code):

    L     = L_r + w_orth * orth + w_unif * U
    L_r   the negative ELBO of x_r, summed over the batch as the code sums it (L_f: of x_f)
    U     KL(p || u): p the judge's mean softmax over the decoded z, u uniform over the classes
          kept and 0 on the forgotten one; each term p_k log((p_k + EPS) / (u_k + EPS))
    orth  cos^2 between g_f = grad(L_f + w_unif U) and g_r = grad(L_r + w_unif U), whose own
          gradient goes through both (a second backward pass)

Before each step it classifies the decoded z; once under STOP_FRACTION of them are the forgotten
class it stops, and otherwise it runs at most `epochs` passes over the pairs of batches (as
many per pass as the shorter of D_f and D_r has). The code trains a fixed number of steps and
reads the same stopping point off its log afterwards; stopping there gives that model.

Two weightings (`weighting`), since the published runs and the code disagree:

- `logged`, w_orth 0 and w_unif 1000: what the published logs ran. The code's runs configured
  orthogonality 1000 and uniformity 0, but handed the weights on in the order (kl, uniformity,
  orthogonality, forget) to a step that unpacks (kl, orthogonality, uniformity, forget), so the
  two ran swapped; commit c63489b of pinakm9/forget fixed the order. The loss is then the retain
  loss and the judge's uniformity term; no forget batch is used.
- `code`, w_orth 1000 and w_unif 0: what the code holds since. The judge then only decides when
  to stop; the loss is the retain loss and the orthogonality term.

UNO removes a class: the uniformity term and the stopping rule are about the judge's classes, so
a forget set that is not whole classes (individual samples, an attribute) is refused
(`split_classes`). Under torchrun every rank runs the same steps on the same batches (as fu).
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from unlearn_cli.data.spec import DatasetSpec, judge_classes
from unlearn_cli.engine.checkpoint import Checkpoint, load_checkpoint
from unlearn_cli.engine.device import seed_everything
from unlearn_cli.engine.train import make_loader, to_device
from unlearn_cli.errors import UsageError
from unlearn_cli.methods import Unlearned
from unlearn_cli.methods.settings import UnoConfig

WEIGHTS = {"logged": (0.0, 1000.0), "code": (1000.0, 0.0)}  # (w_orth, w_unif), module docstring
STOP_FRACTION = 0.02  # the code's stopping point: the first step whose z is under 2% forgotten
EPS = 1e-8  # the code's guard inside the uniformity term's logarithm


def class_indices(labels: Tensor, spec: DatasetSpec) -> Tensor:
    """Each sample's class as the judge numbers it, (N,): a digit's place among the model's
    digits, or a folder image's class column; a UsageError for a dataset without classes."""
    classes = judge_classes(spec)
    if spec.name == "mnist":
        digits = torch.tensor(classes)  # (K,)
        return (labels[:, None] == digits).int().argmax(1)  # (N,) -> (N,)
    if spec.name == "folder" and classes:
        return labels[:, : len(classes)].argmax(1)  # (N, K + A) one-hot classes first -> (N,)
    raise UsageError(
        f"uno forgets a class, and {spec.describe()} has attributes only; forget an attribute "
        "with redirect or fu"
    )


def split_classes(forget, retain, spec: DatasetSpec) -> tuple[list[int], list[int]]:
    """(forgotten, kept): the judge's indices of the classes of D_f and of D_r. A UsageError
    unless D_f is whole classes: no sample to forget shares its class with a kept one."""
    f, r = class_indices(forget.labels, spec), class_indices(retain.labels, spec)  # (N_f,), (N_r,)
    mixed = torch.isin(f, r)
    if mixed.any():
        raise UsageError(
            f"uno forgets whole classes, but {int(mixed.sum())} of the {len(f)} samples to "
            "forget share their class with samples that are kept (individual samples, or an "
            "attribute); forget a class with uno, or use redirect"
        )
    return sorted(set(f.tolist())), sorted(set(r.tolist()))


def load_judge(path: str, vae: Checkpoint) -> nn.Module:
    """The judge at `path`, frozen; a UsageError when there is none or it does not classify the
    model's classes."""
    if not path:
        raise UsageError(
            "is needed by uno, whose loss classifies the model's samples: give a judge "
            "checkpoint of the model's classes (`unlearn train --model judge`)",
            "judge",
        )
    judge = load_checkpoint(path, "judge")
    j, v = judge.dataset, vae.dataset
    if j.name != v.name or j.attribute is not None or judge_classes(j) != judge_classes(v):
        told = (
            f"the attribute {j.attribute}" if j.attribute else ",".join(map(str, judge_classes(j)))
        )
        raise UsageError(
            f"{path} classifies {told} of {j.name}, but the model learned "
            f"{','.join(map(str, judge_classes(v)))} of {v.name}; train a judge of the "
            "model's classes (`unlearn train --model judge`)",
            "judge",
        )
    return judge.model.eval().requires_grad_(False)


def uniformity(logits: Tensor, kept: Tensor) -> Tensor:
    """KL(p || u) of the mean class probabilities p of `logits` (B, K) to u, uniform over the
    class indices `kept` and 0 elsewhere."""
    p = logits.softmax(1).mean(0)  # (B, K) -> (K,)
    u = torch.zeros_like(p)
    u[kept] = 1 / len(kept)
    return (p * torch.log((p + EPS) / (u + EPS))).sum()


def flat_grad(loss: Tensor, params: list[nn.Parameter]) -> Tensor:
    """The gradient of `loss` as one (P,) vector that can itself be differentiated."""
    grads = torch.autograd.grad(loss, params, create_graph=True, allow_unused=True)
    return torch.cat(
        [(torch.zeros_like(p) if g is None else g).reshape(-1) for g, p in zip(grads, params)]
    )  # (P,)


def uno_loss(model, params, logits, kept, x_f, x_r, w_orth: float, w_unif: float):
    """UNO's loss at one step, given the judge's `logits` of the decoded fixed batch; returns
    (loss, U, orth)."""
    u = uniformity(logits, kept)
    zero = torch.zeros((), device=logits.device)
    weighted_u = w_unif * u if w_unif else zero  # 0 * U: no pass back through the judge
    orth = zero
    loss_f = model.negative_elbo(x_f).sum() if w_orth else None  # the code: forget batch first
    loss_r = model.negative_elbo(x_r).sum()
    loss = loss_r + weighted_u
    if loss_f is not None:  # 0 * orth adds nothing: the logged weighting skips the double pass
        g_f = flat_grad(loss_f + weighted_u, params)
        g_r = flat_grad(loss_r + weighted_u, params)
        orth = (g_f @ g_r) ** 2 / ((g_f @ g_f) * (g_r @ g_r))
        loss = loss + w_orth * orth
    return loss, u.detach(), orth.detach()


def judged_forgotten(logits: Tensor, forgotten: Tensor) -> float:
    """The share of rows of `logits` (B, K) whose class is one of `forgotten`."""
    return torch.isin(logits.argmax(1), forgotten).float().mean().item()


def paired(forget_batches, retain_batches, epochs: int):
    """(forget batch, retain batch) pairs: `epochs` passes, each as long as the shorter."""
    for _ in range(epochs):
        yield from zip(forget_batches, retain_batches)


class Uno:
    name = "uno"
    title = "UNO (logged weights)"  # the label of the default weighting

    def title_for(self, cfg: UnoConfig) -> str:
        return f"UNO ({cfg.weighting} weights)"

    def default_config(self, ckpt) -> UnoConfig:
        return UnoConfig()

    def unlearn(
        self, ckpt, forget, retain, cfg: UnoConfig, device, progress, heldout=None
    ) -> Unlearned:
        forgotten, kept = (
            torch.tensor(c, device=device) for c in split_classes(forget, retain, ckpt.dataset)
        )
        judge = load_judge(cfg.judge, ckpt).to(device)
        w_orth, w_unif = WEIGHTS[cfg.weighting]
        generator = seed_everything(cfg.seed)
        model = copy.deepcopy(ckpt.model).to(device).train().requires_grad_(True)
        params = list(model.parameters())
        opt = torch.optim.Adam(params, lr=cfg.lr)
        z = torch.randn(cfg.batch_size, model.latent_dim, generator=generator).to(device)  # (B, z)
        forget_batches = make_loader(forget, cfg.batch_size, device, True, generator)
        retain_batches = make_loader(retain, cfg.batch_size, device, True, generator)
        total = cfg.epochs * min(len(forget_batches), len(retain_batches))
        steps, stopped = 0, False
        first: float | None = None  # judged forgotten before any step
        progress.start(f"uno ({cfg.weighting} weights)", total)
        for batch_f, batch_r in paired(forget_batches, retain_batches, cfg.epochs):
            logits = judge(model.decode(z))  # (B, z) -> (B, C, H, W) -> (B, K)
            fraction = judged_forgotten(logits, forgotten)
            first = fraction if first is None else first
            if fraction < STOP_FRACTION:
                stopped = True
                break
            x_f, x_r = to_device(batch_f, device)[0], to_device(batch_r, device)[0]
            loss, u, orth = uno_loss(model, params, logits, kept, x_f, x_r, w_orth, w_unif)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            steps += 1
            progress.advance(1, f"judged forgotten {fraction:.1%}  U {u:.3f}  orth {orth:.3f}")
        if not stopped:  # the model after the last step
            with torch.no_grad():
                fraction = judged_forgotten(judge(model.decode(z)), forgotten)
        assert first is not None  # the loop ran at least once: D_f and D_r are not empty
        progress.done(
            f"uno: {steps} steps, {fraction:.1%} of the fixed batch judged forgotten"
            + ("" if stopped else f" (not under {STOP_FRACTION:.0%}: it ran out of steps)")
        )
        stats = {
            "steps": float(steps),
            "first_fraction": round(first, 5),  # judged forgotten before any step
            "final_fraction": round(fraction, 5),  # ... by the judge, of the model returned
            "stopped": float(stopped),  # 1: under STOP_FRACTION; 0: out of steps
        }
        return Unlearned(model.eval(), stats)
