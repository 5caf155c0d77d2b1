"""Redirect (ours): make the prior draw retained data where it drew the forgotten data.

Gradient surgery ascends the training loss on D_f. That loss has no upper bound, so the decoder's
forget region collapses onto whatever image maximises it: a saturated blob that a closed-set
judge must still call one of its classes. A model retrained on D_r does something else: the whole
prior decodes to retained data. Redirect gets there in three moves, from the checkpoint and its
training data alone (no judge, no labels, so classes, attributes and samples alike):

0. **Keep training on D_r**, every parameter, the training loss at the checkpoint's own
   learning rate and batch size: the first stretch of a retraining, from the trained weights.
   The encoder and decoder start to settle around the retained data alone, and the retained
   digits that the original drew half like the forgotten one (a blurred 3 that passes for an 8)
   come out plainer, as retraining draws them; the redirect below cannot reach those, since
   they lie outside the forgotten region. How far retraining would move the model grows with
   what is removed, so this step sees `retain_ratio` (10) retained images per forgotten one, and
   at most `retain_epochs` passes over D_r (a quarter of one): a class costs 0.25 / E of
   retraining's E epochs, a request for a few samples a few steps.
1. **Refit the prior** (closed form). The retained data's aggregate posterior is summarised by
   its mean m and covariance C (the covariance of the posterior means plus the mean posterior
   variance). Folding z_old = m + C^(1/2) z_new into the encoder's last layer and the decoder's
   first layer changes no reconstruction, yet N(0, I) now covers where the retained data lives
   rather than where all the data lived: prior mass leaves the forgotten region. The whole
   covariance matters (`covariance="full"`): the forgotten data lies where the retained data's
   correlated dimensions leave a gap, which a per-dimension fit (`"diagonal"`, the default
   before) does not see, so under it a forgotten class can sit as near the prior's centre as
   the retained data (README, "Full refit"). With `refit_twice` (not the default; README,
   "Push away") the prior is refitted before step 0 as well, so that step 0
   trains under the refitted prior, and refitted again after it.
2. **Redirect what is left**, one pass over D_f. Each forget sample's posterior draw z_f gets a
   target among the *interior* retained latents, those whose k nearest neighbours are all
   retained, so that the target is plainly retained content and not a look-alike of the
   forgotten: of the `local_k` (20) interior latents nearest to the draw, the one whose
   (refitted) decoding is nearest to the sample's reconstruction in pixel space
   (`targets="local"`). Similar forgotten images get similar targets, as a retrained decoder
   draws at a forgotten image's latent the retained image that best reconstructs it; the
   nearest latent's decoding alone (`"latent"`, the default before) gives neighbouring draws
   unrelated targets, which the decoder fits as a blur. The decoder descends the Bernoulli
   cross-entropy to that target (bounded: its minimum is a retained image) together with the
   training loss on a retain batch, each weighted by its share of the training set
   (`weighting="share"`): the loss of training on D with D_f's images replaced by retained
   ones. A small forget share therefore moves the decoder little; with equal weights, a digit
   that is a tenth of the data was redirected as hard as one that is a third, and the whole
   decoder lost diversity (README, "Redirect"). Whenever the redirect gradient conflicts with
   the retain gradient g_r, its component along g_r is removed first (the paper's protection
   of D_r, in PCGrad's conflict-only form, since both objectives descend). Beside that pull
   toward the target, the decoder is pushed away from the forgotten image at the same draw,
   bounded as in NPO (`npo_weight`, `npo_beta`; `redirect_loss`): the pull alone leaves the
   decoder able to draw the forgotten content wherever the blurred retained samples look like
   it, outside the region it redirects (README, "Push away"). Two variants, not
   the default (README, "Push away"): `targets="pixel"` makes the pixel pick
   among the whole bank, and `weighting="prior"` also weighs each redirect draw by the prior's
   density there, relative to a typical retained draw's, up to equal weight.

A fourth, `membership.match`, raises the loss of samples that the model memorised to where
held-out data's sits; it skips itself when the gap is too small to show on the request, or when
the forgotten samples already sit past it (a redirected class).

For individual samples the local target is a retained look-alike of the same kind, so the
model stops reproducing the sample and keeps drawing its kind, as retraining without it does.
The latent statistics and the target bank use at most `bank_size` retained samples, so the
method's cost does not grow with the training set beyond step 0 and one pass over D_f.
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

from unlearn_cli import distributed
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
from unlearn_cli.methods.settings import RedirectConfig
from unlearn_cli.methods.surgery import (
    endless,
    flat_grad,
    make_optimizer,
    project,
    sample_of,
    set_grad,
    shuffled,
)

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
    model, mu: torch.Tensor, logvar: torch.Tensor, full: bool = True
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Fold z_old = m + C^(1/2) z_new into the VAE (in place), with m the mean and C the
    covariance of the retained aggregate posterior (the posterior means' covariance plus the
    mean posterior variance), whole (`full`) or its diagonal only. Returns (m, A, shift), with
    which the encoder now gives mu_new = A (mu_old - m) and logvar_new = logvar_old + shift.

    The decoder's fold is exact. With the full C the posterior's variance turns into new
    coordinates on average only (a diagonal posterior stays diagonal): its per-dimension shift
    is what the mean posterior variance becomes. C^(1/2) is the symmetric root, which stays
    nearest the old axes."""
    m = mu.mean(0)  # (z,)
    var = logvar.exp().mean(0)  # (z,) mean posterior variance
    cov = torch.cov(mu.T) + torch.diag(var)  # (z, z)
    if not full:
        cov = torch.diag(cov.diagonal())
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
    `others`: latents deep inside the retained data, away from the forgotten."""
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
def redirect_targets(
    model,
    x_f: torch.Tensor,
    bank: torch.Tensor,
    drawn: torch.Tensor,
    generator: torch.Generator,
    among: int | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(z_f, target): a posterior draw for each forget image and, of the `among` bank latents
    nearest to that draw, the decoding (`drawn`, the bank's) nearest in pixel space to the
    image's reconstruction. `targets: latent` is among = 1 (the nearest latent's decoding),
    `local` among = local_k, `pixel` among = None (the whole bank)."""
    mu, logvar = model.encode(x_f)  # (B, z) each
    noise = torch.randn(mu.shape, generator=generator).to(mu.device)
    z = mu + noise * torch.exp(0.5 * logvar)  # (B, z)
    recon = model.decode(mu).flatten(1)  # (B, P)
    if among is None:  # the whole bank, without gathering a (B, N_bank, P) tensor
        return z, drawn[torch.cdist(recon, drawn.flatten(1)).argmin(dim=1)]
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
    weight: torch.Tensor | None = None,
    away: tuple[torch.Tensor, torch.Tensor, float, float] | None = None,
) -> torch.Tensor:
    """Mean over the batch of the Bernoulli cross-entropy of decode(z) against `target`, each
    draw weighted by `weight` (B,) when given.

    `away` = (x_f, start, npo_weight, beta) adds NPO's bounded push away from the forgotten
    images x_f: -(2 / beta) log sigmoid(beta * delta), with delta how much worse than at the
    start (`start`, (B,) nats) decode(z) now reconstructs x_f. Its gradient is that of the
    cross-entropy to x_f, ascended, times 2 sigmoid(-beta * delta): full at first, fading once
    the forgotten image is a few 1 / beta nats worse explained, so it cannot run away as the
    paper's ascent does."""
    logits = model.decode_logits(z)  # (B, z) -> (B, C, H, W)
    loss = cross_entropy(logits, target)
    if away is not None:
        x_f, start, npo_weight, beta = away
        delta = cross_entropy(logits, x_f) - start
        loss = loss - npo_weight * (2 / beta) * F.logsigmoid(beta * delta)
    return (loss if weight is None else weight * loss).mean()


def prior_weight(z: torch.Tensor, level: float, cap: float) -> torch.Tensor:
    """(B,) the prior's density at each draw relative to its density at squared norm `level`
    (a typical retained draw's), at most `cap`."""
    return torch.exp(-0.5 * (z.pow(2).sum(1) - level)).clamp(max=cap)


def keep_training(
    model, retain, forgotten: int, cfg: RedirectConfig, device, generator, progress
) -> None:
    """Step 0: the training loss on `retain`, every parameter, for `cfg.retain_ratio` retained
    images per forgotten one, `cfg.retain_epochs` passes at most."""
    batches = shuffled(retain, cfg.batch_size, device, generator, cfg.seed)
    passes = min(cfg.retain_epochs, cfg.retain_ratio * forgotten / len(retain))
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
        if cfg.refit and cfg.refit_twice:  # step 0 then trains under the refitted prior
            model.eval()
            mu_r, logvar_r = encode_all(model, sample_of(retain, cfg.bank_size, generator), device)
            refit_prior(model, mu_r, logvar_r, full=cfg.covariance == "full")
        keep_training(model, retain, len(forget), cfg, device, generator, progress)
        model.eval()
        progress.start("redirect: encoding retained and forgotten samples", 2)
        mu_r, logvar_r = encode_all(model, sample_of(retain, cfg.bank_size, generator), device)
        share = min(1.0, cfg.bank_size / len(retain))  # the same share of D_f, for density
        mu_f, _ = encode_all(
            model, sample_of(forget, round(share * len(forget)) or 1, generator), device
        )
        progress.advance(2)
        progress.done()
        if cfg.refit:
            m, a, shift = refit_prior(model, mu_r, logvar_r, full=cfg.covariance == "full")
            mu_r, mu_f = (mu_r - m) @ a.T, (mu_f - m) @ a.T  # the same latents, new coordinates
            logvar_r = logvar_r + shift
        level = None  # with prior weights: E |z_r|^2, a typical retained draw's squared norm
        if cfg.weighting == "prior":
            level = (mu_r.pow(2) + logvar_r.exp()).sum(1).mean().item()
        bank = mu_r[interior(mu_r, mu_f, cfg.interior_k)]  # (N_bank, z)
        if len(bank) == 0:
            bank = mu_r  # every retained latent borders the forgotten: take the nearest
        reference = copy.deepcopy(model).requires_grad_(False)  # draws the targets
        drawn = decode_all(reference, bank)  # (N_bank, C, H, W), every candidate target
        among = {"latent": 1, "local": cfg.local_k, "pixel": None}[cfg.targets]
        model.train()
        params = scoped_parameters(model, cfg.params)
        train_only(model, params)
        opt = make_optimizer("adam", params, cfg.lr)
        forget_batches = shuffled(forget, cfg.batch_size, device, generator, cfg.seed)
        steps = max(cfg.epochs * len(forget_batches), cfg.min_steps) if cfg.epochs else 0
        forget_stream = endless(forget_batches)
        retain_stream = endless(shuffled(retain, cfg.batch_size, device, generator, cfg.seed))
        share = len(forget) / (len(forget) + len(retain)) if cfg.weighting != "equal" else 0.5
        noise = generator  # posterior draws; under torchrun each rank its own stream
        if distributed.world().size > 1:
            noise = torch.Generator().manual_seed(distributed.rank_seed(cfg.seed))
        progress.start("redirect", steps)
        for _ in range(steps):
            x_f, _, _ = to_device(next(forget_stream), device)
            x_r, _, _ = to_device(next(retain_stream), device)
            z, target = redirect_targets(reference, x_f, bank, drawn, noise, among)
            weight = prior_weight(z, level, 0.5 / share) if level is not None else None
            away = None
            if cfg.npo_weight:
                with torch.no_grad():  # how well the model reconstructed x_f at z to start with
                    start = cross_entropy(reference.decode_logits(z), x_f)
                away = (x_f, start, cfg.npo_weight, cfg.npo_beta)
            loss_d = redirect_loss(model, z, target, weight, away)
            g_d = flat_grad(loss_d, params)
            loss_r = model.loss(x_r)
            g_r = flat_grad(loss_r, params)
            if cfg.projection != "none":
                g_d = project(g_d, g_r, cfg.projection)  # no longer raises the retain loss
            # descend both: redirect D_f, keep explaining D_r
            set_grad(params, share * g_d + (1 - share) * g_r)
            opt.step()
            progress.advance(1, f"redirect loss {loss_d.item():.1f}  retain {loss_r.item():.1f}")
        progress.done()
        stats: dict[str, float] = {}
        if cfg.match_steps and heldout is not None:
            stats = membership.match(
                # targets from the model as it came: step 0's training on D_r would widen the
                # held-out gap that step 3 reads as memorisation
                model, copy.deepcopy(ckpt.model).to(device), params, opt,
                (forget, retain, heldout), cfg.match_steps,
                cfg, device, generator, progress,
            )  # fmt: skip
        return Unlearned(model.requires_grad_(True).eval(), stats)
