"""Redirect (ours): make the prior draw retained data where it drew the forgotten data, as a model
retrained on D_r does, from the checkpoint and its training data alone (no judge, no labels).

0. Keep training on D_r for a short stretch (`keep_training`), every parameter.
1. Refit the prior in closed form to the retained data's aggregate posterior (`refit_prior`):
   no reconstruction changes, but prior mass leaves the forgotten region.
2. Redirect what is left (`redirect_pass`): one pass over D_f in which the decoder learns to draw,
   at each forgotten sample's posterior draw, a retained decoding that looks like it, beside the
   training loss on D_r, and is pushed away from the forgotten image itself (bounded, as in NPO).
3. Raise memorised samples' loss to held-out data's level (`membership`), when there are any;
   retrain from scratch instead when that could cost more than retraining
   (`retraining_is_cheaper`).

docs/methods.md gives the reasons for each step and for the constants below; docs/benchmarks.md
the measurements that chose them.
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

from unlearn_cli import defaults, distributed
from unlearn_cli.engine.device import seed_everything
from unlearn_cli.engine.train import make_loader, to_device
from unlearn_cli.methods import (
    Unlearned,
    membership,
    original_batch_size,
    original_lr,
    scoped_parameters,
    train_only,
)
from unlearn_cli.methods.retrain import Retrain
from unlearn_cli.methods.settings import RedirectConfig
from unlearn_cli.methods.steps import (
    endless,
    flat_grad,
    make_optimizer,
    project,
    sample_of,
    set_grad,
    shuffled,
)

BANK_SIZE = 2048  # retained samples encoded for the refit and the targets: cost flat in |D_r|
INTERIOR_K = 10  # a target's nearest bank neighbours that must all be retained
LOCAL_K = 20  # bank latents nearest to a forgotten draw among which its target is picked
MIN_STEPS = 10  # a request of a few samples still gets enough steps to move the decoder
# step 2's redirect term is weighted by D_f's share of D, so a smaller share needs more steps to
# move the decoder as far: steps x share at least this (12 steps for a third, 40 for a tenth)
REDIRECT_WEIGHT = 4.0
MAX_STEPS = 50  # a few samples' tiny share would ask for thousands; 50 is what they always had
RETAIN_RATIO = 10  # step 0's retained images per forgotten one, up to retain_epochs passes
NPO_BETA = 0.1  # per nat: the push fades once a forgotten image is ~1 / NPO_BETA nats worse
PROJECTION = "conflict"  # both objectives descend, so only a conflicting component is removed

BANK_BATCH = 1000  # images encoded, or latents decoded, per forward pass over the bank


@torch.no_grad()
def encode_all(model, data, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(mu, logvar) of every sample of `data`, each (N, z) on `device`."""
    mus, logvars = [], []
    for batch in make_loader(data, BANK_BATCH, device):
        x, _, _ = to_device(batch, device)
        mu, logvar = model.encode(x)  # (B, C, H, W) -> 2 x (B, z)
        mus.append(mu)
        logvars.append(logvar)
    return torch.cat(mus), torch.cat(logvars)


def linear_layers(module: nn.Module) -> list[nn.Linear]:
    return [m for m in module.modules() if isinstance(m, nn.Linear)]


@torch.no_grad()
def refit_prior(
    model, mu: torch.Tensor, logvar: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Fold z_old = m + C^(1/2) z_new into the VAE (in place), with m the mean and C the
    covariance of the retained aggregate posterior (the posterior means' covariance plus the
    mean posterior variance). Returns (m, A, shift), with which the encoder now gives
    mu_new = A (mu_old - m) and logvar_new = logvar_old + shift. The whole covariance, not its
    diagonal: the forgotten data lies where the retained data's correlated dimensions leave a
    gap, which a per-dimension fit does not see.

    The decoder's fold is exact. With the full C the posterior's variance turns into new
    coordinates on average only (a diagonal posterior stays diagonal): its per-dimension shift
    is what the mean posterior variance becomes. C^(1/2) is the symmetric root, which stays
    nearest the old axes."""
    m = mu.mean(0)  # (z,)
    var = logvar.exp().mean(0)  # (z,) mean posterior variance
    cov = torch.cov(mu.T) + torch.diag(var)  # (z, z)
    lam, u = torch.linalg.eigh(cov)
    lam = lam.clamp(min=1e-6 * lam.max().item())  # a flat direction stays invertible
    root = u @ torch.diag(lam.sqrt()) @ u.T  # C^(1/2)
    a = u @ torch.diag(lam.rsqrt()) @ u.T  # C^(-1/2)
    # (z,) log of diag(A diag(var) A^T) / var: what the mean posterior variance becomes
    shift = ((a.pow(2) @ var) / var.clamp(min=1e-12)).log()  # -2 log s if C is diagonal
    z = len(m)
    head = linear_layers(model.encoder)[-1]  # outputs (mu, logvar), (B, 2z)
    head.weight[:z] = a @ head.weight[:z]
    head.bias[:z] = a @ (head.bias[:z] - m)
    head.bias[z:] += shift
    first = linear_layers(model.decoder)[0]  # takes z, (B, z)
    first.bias.add_(first.weight @ m)  # W z_old + b = (W C^(1/2)) z_new + (W m + b)
    first.weight.copy_(first.weight @ root)
    return m, a, shift


def interior(bank: torch.Tensor, others: torch.Tensor, k: int) -> torch.Tensor:
    """Mask over `bank` rows whose k nearest bank neighbours are all nearer than any row of
    `others`: latents deep inside the retained data, away from the forgotten. A bank of k or
    fewer rows counts all of them but the row itself."""
    k = min(k, len(bank) - 1)
    keep = []
    for rows in bank.split(2048):
        d = torch.cdist(rows, bank)  # (chunk, N), each row's own latent at distance 0
        kth = d.topk(k + 1, dim=1, largest=False).values[:, -1]  # (chunk,), faster than kthvalue
        keep.append(torch.cdist(rows, others).min(dim=1).values > kth)
    return torch.cat(keep)


@torch.no_grad()
def decode_all(model, bank: torch.Tensor) -> torch.Tensor:
    """What `model` draws at every bank latent, (N, C, H, W) in [0, 1]."""
    return torch.cat([model.decode(rows) for rows in bank.split(BANK_BATCH)])


@torch.no_grad()
def posteriors(model, data, device: torch.device) -> tuple[torch.Tensor, ...]:
    """(ids, mu, logvar, recon) of every sample of `data` under the frozen `model`, sorted by
    id, recon (N, P) its decoding at mu: step 2 looks each batch up (`looked_up`) instead of
    encoding and decoding its images again on every pass over them."""
    with torch.random.fork_rng(devices=[]):  # the loader draws a seed: leave the stream be
        mu, logvar = encode_all(model, data, device)
    recon = decode_all(model, mu).flatten(1)
    order = data.ids.argsort()
    return data.ids[order].to(device), mu[order], logvar[order], recon[order]


def looked_up(seen: tuple[torch.Tensor, ...], ids: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The (mu, logvar, recon) rows of `posteriors`' output for the samples `ids`."""
    rows = torch.searchsorted(seen[0], ids.to(seen[0].device))
    return tuple(part[rows] for part in seen[1:])


@torch.no_grad()
def redirect_targets(
    posterior: tuple[torch.Tensor, ...],
    bank: torch.Tensor,
    drawn: torch.Tensor,
    generator: torch.Generator,
    among: int = LOCAL_K,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(z_f, target): a posterior draw for each forget image (`posterior`: its mu, logvar and
    reconstruction at mu, (B, P)) and, of the `among` bank latents nearest to that draw, the
    decoding (`drawn`, the bank's) nearest in pixel space to the image's reconstruction:
    similar forgotten images get similar targets, as a retrained decoder draws at a forgotten
    image's latent the retained image that best reconstructs it."""
    mu, logvar, recon = posterior  # (B, z), (B, z), (B, P)
    noise = torch.randn(mu.shape, generator=generator).to(mu.device)
    z = mu + noise * torch.exp(0.5 * logvar)  # (B, z)
    rows = torch.cdist(z, bank).topk(min(among, len(bank)), dim=1, largest=False).indices
    apart = (drawn.flatten(1)[rows] - recon[:, None]).pow(2).sum(2)  # (B, among) squared
    return z, drawn[rows.gather(1, apart.argmin(dim=1, keepdim=True)).squeeze(1)]


def cross_entropy(logits: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    """(B,) the Bernoulli cross-entropy of each decoding against its image, in nats."""
    return F.binary_cross_entropy_with_logits(logits, images, reduction="none").flatten(1).sum(1)


def redirect_loss(
    model,
    z: torch.Tensor,
    target: torch.Tensor,
    x_f: torch.Tensor | None = None,
    start: torch.Tensor | None = None,
    npo_weight: float = 0.0,
) -> torch.Tensor:
    """Mean over the batch of the Bernoulli cross-entropy of decode(z) against `target`.

    With `npo_weight`, NPO's bounded push away from the forgotten images `x_f` is added:
    -(2 / beta) log sigmoid(beta * delta), with delta how much worse than at the start
    (`start`, (B,) nats) decode(z) now reconstructs x_f. Its gradient is that of the
    cross-entropy to x_f, ascended, times 2 sigmoid(-beta * delta): full at first, fading once
    the forgotten image is a few 1 / beta nats worse explained, so it cannot run away as the
    paper's ascent does."""
    logits = model.decode_logits(z)  # (B, z) -> (B, C, H, W)
    loss = cross_entropy(logits, target)
    if npo_weight and x_f is not None and start is not None:
        delta = cross_entropy(logits, x_f) - start
        loss = loss - npo_weight * (2 / NPO_BETA) * F.logsigmoid(NPO_BETA * delta)
    return loss.mean()


def keep_training(
    model, retain, forgotten: int, cfg: RedirectConfig, device, generator, progress
) -> None:
    """Step 0: the training loss on `retain`, every parameter, for RETAIN_RATIO retained images
    per forgotten one, `cfg.retain_epochs` passes at most: the first stretch of a retraining,
    as long as what is removed asks for."""
    batches = shuffled(retain, cfg.batch_size, device, generator, cfg.seed)
    passes = min(cfg.retain_epochs, RETAIN_RATIO * forgotten / len(retain))
    steps = math.ceil(passes * len(batches))
    if steps == 0:
        return
    params = list(model.parameters())
    train_only(model, params)
    opt = make_optimizer("adam", params, cfg.retain_lr)
    stream = endless(batches)
    model.train()
    progress.start("redirect: training on D_r", steps)
    for _ in range(steps):
        x_r, _, _ = to_device(next(stream), device)
        loss = model.loss(x_r)
        set_grad(params, flat_grad(loss, params))  # averaged over the ranks under torchrun
        opt.step()
        progress.advance(1, f"retain loss {loss.item():.1f}")
    progress.done()


def covering(forget, retain, generator):
    """The forgotten images every step reads: a sample of D_f at the bank's density (the
    share of D_r the bank holds), which covers the region D_f occupies as densely as the bank
    covers D_r's, so the interior test sees both at one density. A class or an attribute then
    costs what its region asks for, not a pass over every image of it."""
    share = min(1.0, BANK_SIZE / len(retain))
    return sample_of(forget, math.ceil(share * len(forget)), generator)


@torch.no_grad()
def targets_bank(model, forget, retain, generator, device, progress):
    """Step 1 and what step 2 draws from: refit `model`'s prior to the retained data (in
    place), then return the interior retained latents (the bank), a frozen copy of the refitted
    model, and its decodings of the bank (every candidate target)."""
    model.eval()
    progress.start("redirect: encoding retained and forgotten samples", 2)
    mu_r, logvar_r = encode_all(model, sample_of(retain, BANK_SIZE, generator), device)
    mu_f, _ = encode_all(model, forget, device)  # the bank's share of D_f (`covering`)
    progress.advance(2)
    progress.done()
    m, a, _ = refit_prior(model, mu_r, logvar_r)
    mu_r, mu_f = (mu_r - m) @ a.T, (mu_f - m) @ a.T  # the same latents, new coordinates
    bank = mu_r[interior(mu_r, mu_f, INTERIOR_K)]  # (N_bank, z)
    if len(bank) == 0:
        bank = mu_r  # every retained latent borders the forgotten: take the nearest
    reference = copy.deepcopy(model).requires_grad_(False)  # draws the targets
    return bank, reference, decode_all(reference, bank)  # drawn: (N_bank, C, H, W)


def redirect_pass(
    model, reference, bank, drawn, covered, retain, share, cfg, device, generator, progress
):
    """Step 2: descend the cross-entropy to each forgotten draw's target (with the push away
    from the forgotten image) and the training loss on D_r, each weighted by its share of the
    training set (`share`, D_f's): the loss of training on D with D_f's images replaced by
    retained ones. The forgotten draws come from `covered`, a sample of D_f that covers the
    region it occupies. Returns the parameters it trained and their optimizer, which step 3
    continues."""
    model.train()
    params = scoped_parameters(model, cfg.params)
    train_only(model, params)
    opt = make_optimizer("adam", params, cfg.lr)
    forget_batches = shuffled(covered, cfg.batch_size, device, generator, cfg.seed)
    weighted = min(math.ceil(REDIRECT_WEIGHT / share), MAX_STEPS)
    steps = max(cfg.epochs * len(forget_batches), MIN_STEPS, weighted) if cfg.epochs else 0
    forget_stream = endless(forget_batches)
    retain_stream = endless(shuffled(retain, cfg.batch_size, device, generator, cfg.seed))
    noise = generator  # posterior draws; under torchrun each rank its own stream
    if distributed.world().size > 1:
        noise = torch.Generator().manual_seed(distributed.rank_seed(cfg.seed))
    progress.start("redirect", steps)
    seen = posteriors(reference, covered, device) if steps else ()
    for _ in range(steps):
        x_f, _, ids_f = to_device(next(forget_stream), device)
        x_r, _, _ = to_device(next(retain_stream), device)
        z, target = redirect_targets(looked_up(seen, ids_f), bank, drawn, noise)
        start = None  # how well the model reconstructed x_f at z to start with, for the push
        if cfg.npo_weight:
            with torch.no_grad():
                start = cross_entropy(reference.decode_logits(z), x_f)
        loss_d = redirect_loss(model, z, target, x_f, start, cfg.npo_weight)
        g_d = flat_grad(loss_d, params)
        loss_r = model.loss(x_r)
        g_r = flat_grad(loss_r, params)
        g_d = project(g_d, g_r, PROJECTION)  # no longer raises the retain loss
        set_grad(params, share * g_d + (1 - share) * g_r)  # redirect D_f, keep explaining D_r
        opt.step()
        progress.advance(1, f"redirect loss {loss_d.item():.1f}  retain {loss_r.item():.1f}")
    progress.done()
    return params, opt


def retraining_is_cheaper(ckpt, forget, retain, cfg: RedirectConfig) -> bool:
    """Whether step 3's steps could read as many images as retraining on `retain` with the
    checkpoint's recipe (its epochs over D_r): then retraining is the cheaper way to leave
    every memorised sample as unseen, and it does so exactly, where step 3's targets are a
    regression's estimate."""
    budget = membership.images_read(cfg.match_steps, len(forget), cfg.batch_size)
    return budget >= defaults.training(ckpt.training)["epochs"] * len(retain)


class Redirect:
    name = "redirect"
    title = "OURS (redirect)"

    def title_for(self, cfg) -> str:
        return self.title

    def default_config(self, ckpt) -> RedirectConfig:
        return RedirectConfig(batch_size=original_batch_size(ckpt), retain_lr=original_lr(ckpt))

    def unlearn(
        self, ckpt, forget, retain, cfg: RedirectConfig, device, progress, heldout=None
    ) -> Unlearned:
        generator = seed_everything(cfg.seed)
        distributed.decorrelate(cfg.seed)  # under torchrun: each rank its own noise
        model = copy.deepcopy(ckpt.model).to(device)
        covered = covering(forget, retain, generator)
        share = len(forget) / (len(forget) + len(retain))
        keep_training(model, retain, len(covered), cfg, device, generator, progress)
        bank, reference, drawn = targets_bank(model, covered, retain, generator, device, progress)
        params, opt = redirect_pass(
            model, reference, bank, drawn, covered, retain, share, cfg, device, generator,
            progress,
        )  # fmt: skip
        stats: dict[str, float] = {}
        read = covered.ids
        if cfg.match_steps and heldout is not None:
            data = (forget, retain, heldout)
            # targets from the model as it came: step 0's training on D_r would widen the
            # held-out gap that step 3 reads as memorisation
            before = copy.deepcopy(ckpt.model).to(device)
            found = membership.look(model, before, data, device, generator)
            stats, read = found.stats, torch.cat([read, found.read])
            if found.probes is None:
                pass  # nothing memorised left to raise
            elif retraining_is_cheaper(ckpt, forget, retain, cfg):
                retrained = Retrain()
                model = retrained.unlearn(
                    ckpt, forget, retain, retrained.default_config(ckpt), device, progress
                ).model
                stats["retrained"] = True
            else:
                stats, matched = membership.raise_to_targets(
                    model, before, params, opt, data, found, cfg.match_steps,
                    cfg, device, generator, progress,
                )  # fmt: skip
                read = torch.cat([read, matched])
        # distinct forgotten images any step read: the cost that grows with the request
        stats["forget_images_read"] = len(read.unique())
        return Unlearned(model.requires_grad_(True).eval(), stats)
