"""Match membership: after forgetting, no forgotten sample may stay explained better than data
the model never saw, and none is pushed much further than that.

A model that memorised its training samples gives each a lower loss (negative ELBO) than it
gives held-out data; that gap is what a membership-inference attack reads. Retraining without
a sample leaves it a held-out sample. So each forgotten sample x gets a target loss tau(x): the
loss a model that never saw x would give it, predicted from statistics of its pixels that
memorisation does not move (ink, edges, entropy, and how far it lies from the retained images'
main components: `statistics`), by a ridge regression fitted on held-out samples' losses under
the model being forgotten, refitted at every test of the shortfall: an attack compares a
forgotten sample with what the same model makes of unseen data, so where forgetting moves the
held-out level, the targets move with it. Never below the loss x had before. One gap for every
sample would shift all of them alike, while a model memorises some samples far more than others.

The model descends the per-sample hinge max(0, tau(x) - L(x)) over each batch of forgotten
samples together with the retain loss, which counts RETAIN_WEIGHT times, until a probe of them
is no longer significantly below its targets on average (tested every CHECK_EVERY steps; a
larger request needs more) or for `steps` at most: the forgotten samples' loss rises to where
samples of their kind sit unseen, stays there while the retain loss recovers, and is not pushed
past it (gradient ascent's unbounded loss is what wrecks models). The step is skipped when the
gap between held-out and retained data is too small for an attack to see on a request of this
size, or the forgotten samples are not significantly below their loss before shifted by that
gap (a forgotten class, once redirected: the regression would extrapolate to a class the
held-out data lacks). The first test is the loss-threshold attack's AUC (held-out against
retained probes), which must clear chance by twice the standard error of an AUC measured on the
request's n samples, combined with that of the probes' own AUC: a 20-epoch MNIST VAE's
1-to-2-nat gap gives AUC 0.51 to 0.52, below the bar on 50 samples (0.585) and on a class of
6,000 (0.523), while a memorising model's 53-nat gap gives 0.85. A glance at GLANCE samples
of each probe comes first: forgotten samples whose loss already rose past the gap beyond its
noise have nothing left to raise, whatever the full tests would find, and a class the pass
redirected is settled there for a fraction of their cost.

The held-out data is the dataset's test split; a probe of it fits the regression.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from unlearn_cli import distributed
from unlearn_cli.engine.train import make_loader, to_device
from unlearn_cli.methods.steps import (
    endless,
    flat_grad,
    project,
    sample_of,
    set_grad,
    shuffled,
)

PROBE = 2048  # held-out and retained samples whose mean loss sets the gap
GLANCE = 256  # of each probe, the first look, which settles a class the pass redirected
BATCH = 1000  # images per forward pass when measuring
CHECK_EVERY = 200  # steps between tests of the shortfall: what a request of 50 samples needs
COMPONENTS = (8, 16, 32)  # principal components of retained images: a residual for each
RIDGE = 1e-3  # keeps the regression's solve well posed when two statistics move together
# the retain gradient counts double: per-sample pushes otherwise drag held-out data's loss up
RETAIN_WEIGHT = 2.0


@torch.no_grad()
def losses(model: nn.Module, data, device: torch.device, seed: int = 0) -> torch.Tensor:
    """(N,) negative ELBO of every sample of `data`, with seeded noise, on CPU."""
    out = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for batch in make_loader(data, BATCH, device):
            x, _, _ = to_device(batch, device)
            out.append(model.negative_elbo(x).cpu())  # type: ignore[operator]
    return torch.cat(out)


def attack_auc(unseen: torch.Tensor, seen: torch.Tensor) -> float:
    """AUC of the loss-threshold membership attack: the chance that an unseen sample's loss is
    above a seen one's, ties counting half (0.5: the losses tell nothing)."""
    # sign: +1 above, 0 tied, -1 below; its mean is P(above) - P(below)
    return 0.5 + 0.5 * (unseen[:, None] - seen[None, :]).sign().mean().item()


def chance_stderr(members: int, nonmembers: int) -> float:
    """Standard error of an AUC measured on `members` against `nonmembers` samples whose losses
    tell nothing (Hanley and McNeil 1982)."""
    return ((members + nonmembers + 1) / (12 * members * nonmembers)) ** 0.5


def visible(auc: float, members: int, heldout: int, retained: int) -> bool:
    """An attack AUC, measured on `heldout` against `retained` probe samples, beyond twice the
    standard error of chance on a request of `members` samples (against the held-out ones) and
    on the probes themselves: an advantage an attacker could tell from guessing on this
    request, and not a fluke of the probes drawn."""
    request, probes = chance_stderr(members, heldout), chance_stderr(heldout, retained)
    return auc - 0.5 > 2 * (request**2 + probes**2) ** 0.5


def significant(mean: torch.Tensor, stderr: torch.Tensor) -> bool:
    """A mean loss difference beyond twice its standard error (a single draw of each sample's
    loss is noisy): anything less is no evidence of memorisation left to remove."""
    return bool(mean > 2 * stderr.nan_to_num(0.0))


@dataclass
class Look:
    """What step 3 finds before any step: the gap it measured (`stats`, for the lineage), the
    forgotten samples it read (`read`, ids), and the probes the steps go on with, or None when
    there is nothing to do."""

    stats: dict[str, float]
    read: torch.Tensor
    probes: tuple | None = None  # (held-out, retained, forgotten) probes


def look(model, reference, data, device, generator) -> Look:
    """Whether `model` (forgetting under way) leaves memorised samples of `data` (forget,
    retain, heldout) to raise: a gap visible on this request, measured on `reference` (the model
    before forgetting), and the forgotten samples significantly below their loss before shifted
    by that gap (module docstring)."""
    forget, retain, heldout = data
    reference.eval()
    probes = sample_of(heldout, PROBE, generator), sample_of(retain, PROBE, generator)
    probe = sample_of(forget, PROBE, generator)
    *others, glimpse = [spread(p, GLANCE) for p in (*probes, probe)]  # the forgotten last
    unseen, seen, was = (losses(reference, p, device) for p in (*others, glimpse))
    if clearly_past(losses(model, glimpse, device) - was, unseen, seen):
        return Look(gap_stats(unseen, seen), glimpse.ids)
    unseen, seen = (losses(reference, p, device) for p in probes)
    stats = gap_stats(unseen, seen)
    if not visible(stats["membership_auc"], len(forget), len(unseen), len(seen)):
        # a model that does not memorise, or not enough to show on this request
        return Look(stats, glimpse.ids)
    # whether there is anything to do, against one gap for all: the regression extrapolates to
    # classes the held-out data lacks, and a redirected class has left its old loss anyway
    gap = unseen.mean() - seen.mean()
    before = shortfall(model, probe, losses(reference, probe, device) + gap, device)
    if before["membership_reached"]:
        return Look(stats, probe.ids)
    return Look(stats, probe.ids, (*probes, probe))


def gap_stats(unseen: torch.Tensor, seen: torch.Tensor) -> dict[str, float]:
    """The held-out (`unseen`) and retained (`seen`) losses' gap and attack AUC, for the
    lineage."""
    return {
        "membership_gap": round((unseen.mean() - seen.mean()).item(), 4),
        "membership_auc": round(attack_auc(unseen, seen), 4),
        "membership_steps": 0,
    }


def spread(data, n: int):
    """At most `n` samples of `data` evenly spread over it: of a random probe, a smaller one
    drawn without touching the generator, so that the steps' batches stay as they were."""
    if len(data) <= n:
        return data
    return data.subset(torch.arange(n) * len(data) // n)


def clearly_past(rise: torch.Tensor, unseen: torch.Tensor, seen: torch.Tensor) -> bool:
    """Whether forgotten samples whose loss rose by `rise` (N,) during forgetting rose past the
    gap between held-out (`unseen`) and retained (`seen`) losses beyond twice the standard error
    of both: nothing left to raise, as the full test would find (a redirected class), told from
    a glance at a few hundred samples instead of thousands."""
    if min(len(rise), len(unseen), len(seen)) < 2:
        return False  # no spread to measure the noise by: the full tests decide
    past = rise.mean() - (unseen.mean() - seen.mean())
    variance = rise.var() / len(rise) + unseen.var() / len(unseen) + seen.var() / len(seen)
    return bool(past > 2 * variance.sqrt())


def raise_to_targets(
    model, reference, params, opt, data, found: Look, steps: int, cfg, device, generator, progress
) -> tuple[dict[str, float], torch.Tensor]:
    """The hinge with the retain loss until the shortfall is gone, `steps` at most (module
    docstring), from what `look` found; the targets follow `model` as it goes. Returns what it
    measured, for the lineage, and the ids of the forgotten samples it read."""
    assert found.probes is not None, "look found nothing to raise"
    forget, retain, _ = data
    heldout_probe, retain_probe, probe = found.probes
    order = forget.ids.argsort()
    ids = forget.ids[order]
    predict = targets(reference, forget, heldout_probe, retain_probe, device)

    def level() -> torch.Tensor:
        """The targets from the held-out probe's losses under the model now (in eval mode):
        where forgetting has moved the held-out level, they move with it, since an attack
        compares a forgotten sample with what the same model makes of unseen data."""
        model.eval()
        return predict(losses(model, heldout_probe, device))[order]

    tau = level()
    model.train()
    forget_stream = endless(shuffled(forget, cfg.batch_size, device, generator, cfg.seed))
    retain_stream = endless(shuffled(retain, cfg.batch_size, device, generator, cfg.seed))
    progress.start("match membership", steps)
    after: dict[str, float | bool] = {}
    for step in range(1, steps + 1):
        x_f, _, batch_ids = to_device(next(forget_stream), device)
        x_r, _, _ = to_device(next(retain_stream), device)
        tau_f = tau[torch.searchsorted(ids, batch_ids)].to(device)
        # each sample's own: a batch's mean would let the least memorised carry the rest
        short = (tau_f - model.negative_elbo(x_f)).clamp_min(0).mean()
        loss_r = model.loss(x_r)
        g_r = flat_grad(loss_r, params)
        g_m = project(flat_grad(short, params), g_r, "conflict")
        set_grad(params, g_m + RETAIN_WEIGHT * g_r)
        opt.step()
        progress.advance(1, f"below target {short.item():.1f} nats  retain {loss_r:.1f}")
        if step % CHECK_EVERY == 0 or step == steps:
            tau = level()
            probe_tau = tau[torch.searchsorted(ids, probe.ids)]
            # rank 0 decides, so that every process stops at the same step
            after = distributed.broadcast(shortfall(model, probe, probe_tau, device))
            model.train()
            if after["membership_reached"]:
                break
    progress.done()
    return {**found.stats, "membership_steps": step, **after}, forget.ids


def images_read(steps: int, forgotten: int, batch_size: int) -> int:
    """The most images `steps` steps of the hinge read: a batch of forgotten samples (all of
    them, when fewer) and one of retained samples each."""
    return steps * (min(batch_size, forgotten) + batch_size)


@torch.no_grad()
def targets(reference, forget, heldout, retain, device) -> Callable[[torch.Tensor], torch.Tensor]:
    """A map from `heldout`'s losses under a model, (M,), to each forgotten sample's target
    under it, (N,): the loss that model would give the sample had it never seen it, predicted
    from its pixel statistics by a ridge regression fitted on those held-out losses, and never
    below its loss under `reference` (the model before forgetting; module docstring). The
    statistics are computed once; `retain` gives the principal components their residuals are
    measured from."""
    pixels = torch.cat(
        [to_device(b, device)[0].flatten(1).cpu() for b in make_loader(retain, BATCH, device)]
    )
    centre = pixels.mean(0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # the randomised decomposition: the same on every process
        _, _, basis = torch.svd_lowrank(
            pixels - centre, q=min(max(COMPONENTS, default=0) + 8, *pixels.shape)
        )
    x = statistics(heldout, centre, basis, device)
    mean, std = x.mean(0), x.std(0).clamp_min(1e-8)

    def design(stats: torch.Tensor) -> torch.Tensor:
        return torch.cat([(stats - mean) / std, torch.ones(len(stats), 1, dtype=stats.dtype)], 1)

    a = design(x)
    solve = a.T @ a + RIDGE * len(a) * torch.eye(a.shape[1], dtype=a.dtype)
    rows = design(statistics(forget, centre, basis, device))
    floor = losses(reference, forget, device)

    def predict(heldout_losses: torch.Tensor) -> torch.Tensor:
        weights = torch.linalg.solve(solve, a.T @ heldout_losses.double())
        return torch.maximum((rows @ weights).float(), floor)

    return predict


def statistics(data, centre: torch.Tensor, basis: torch.Tensor, device) -> torch.Tensor:
    """(N, 4 + len(COMPONENTS)) float64 of every image of `data`, pixels in [0, 1]: total ink,
    pixels over half, total variation across rows and columns, Bernoulli entropy, and the squared
    residual off the first k principal components (`centre`, `basis` (D, K)) for k in
    COMPONENTS."""
    out = []
    for batch in make_loader(data, BATCH, device):
        images = to_device(batch, device)[0].cpu().double()  # (B, C, H, W)
        flat = images.flatten(1)
        p = flat.clamp(1e-4, 1 - 1e-4)
        edges = (images.diff(dim=-1).abs().flatten(1).sum(1)
                 + images.diff(dim=-2).abs().flatten(1).sum(1))  # fmt: skip
        cols = [flat.sum(1), (flat > 0.5).double().sum(1), edges,
                -(p * p.log() + (1 - p) * (1 - p).log()).sum(1)]  # fmt: skip
        centred = flat - centre.double()
        for k in COMPONENTS:
            top = basis[:, :k].double()
            cols.append((centred - centred @ top @ top.T).square().sum(1))
        out.append(torch.stack(cols, 1))
    return torch.cat(out)


def shortfall(model, probe, tau: torch.Tensor, device) -> dict[str, float | bool]:
    """How far the probe of forgotten samples sits below its targets `tau` (N,) on average
    (nats; 0 or less: reached), and whether that is beyond noise: before the steps, whether
    there is anything to do; after them, whether a request too large for `steps` left its
    samples explained better than they would be unseen, which an attack reads."""
    model.eval()
    short = tau - losses(model, probe, device)  # (N,)
    mean, stderr = short.mean(), short.std() / len(short) ** 0.5
    return {
        "membership_short": round(mean.item(), 4),
        "membership_reached": not significant(mean, stderr),
    }
