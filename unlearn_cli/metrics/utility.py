"""Utility: what forgetting cost in quality. IS and FID in the judge's feature space (through
torchmetrics), and the negative ELBO of real images."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator

import torch
from torch import nn

from unlearn_cli import distributed
from unlearn_cli.metrics.judge import Computed, Images, batches, device_of, judge_outputs
from unlearn_cli.models.vae import cpu_normal


@contextlib.contextmanager
def seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Run the block with the global generator of `device` (and the CPU's) seeded, then put
    both back as they were, so a metric neither depends on nor disturbs the caller's RNG."""
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.random.default_generator.manual_seed(seed)
        if device.type == "cuda":
            with torch.cuda.device(device):
                torch.cuda.manual_seed(seed)
        yield


@torch.no_grad()
def inception_score(
    judge: nn.Module, images: Images, batch_size: int = 500, splits: int = 1
) -> float:
    """exp(E_x KL(p(y|x) || p(y))) with the judge's class probabilities, from 1 (every image
    the same class) to the number of classes (confident and evenly spread)."""
    judge.eval()
    device = device_of(judge)
    logits = [judge(x.to(device)) for x in batches(images, batch_size)]  # (B, classes) each
    logits = distributed.gather_batches(logits, device)
    if not logits:
        raise ValueError("inception_score needs at least one image")
    return inception_score_of_logits(torch.cat(logits), splits)


def inception_score_of_logits(logits: torch.Tensor, splits: int = 1) -> float:
    """The Inception Score of judge logits (N, classes), through torchmetrics.

    `splits=1` by default: p(y) is estimated from all N images at once. torchmetrics' default
    (10 splits, the convention of the original Inception Score code) averages over random
    tenths, which makes the value depend on its random permutation and biases it with fewer
    samples per split; the paper reports its spread over repeated runs, not over splits, and
    with a few classes and 10,000 samples the two estimates agree to about 1e-3.

    torchmetrics 1.9's InceptionScore turns inputs into `(x * 255).byte()` when
    `normalize=True`, custom extractor or not; we pass `normalize=False`, so the logits reach
    its softmax exactly as given.
    """
    from torchmetrics.image.inception import InceptionScore

    # logits arrive gathered from every rank: no second gather (see fid_of_features)

    if len(logits) == 0:
        raise ValueError("inception_score needs at least one image")
    with warnings.catch_warnings():  # it warns that it keeps every logit in memory: N x classes
        warnings.filterwarnings("ignore", message=".*will save all extracted features.*")
        metric = InceptionScore(
            feature=Computed(logits.shape[1]), splits=splits, normalize=False, sync_on_compute=False
        )
    metric.to(logits.device)
    metric.update(logits)
    with seeded(0, torch.device("cpu")), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*degrees of freedom.*")  # std of 1 split
        mean, _ = metric.compute()  # it shuffles with torch.randperm first, hence the seed
    return float(mean)


@torch.no_grad()
def fid(judge: nn.Module, fake: Images, real: Images, batch_size: int = 500) -> float:
    """Frechet distance between Gaussians fitted to judge features (its penultimate layer) of
    `fake` and `real` images, in float64."""
    return fid_of_features(
        judge_outputs(judge, fake, batch_size)[1], judge_outputs(judge, real, batch_size)[1]
    )


def fid_of_features(fake: torch.Tensor, real: torch.Tensor) -> float:
    """FID between judge features (N, num_features) of fake and real images, via torchmetrics.

    torchmetrics 1.9's FrechetInceptionDistance passes inputs unchanged to a custom extractor
    (its `normalize` only picks the dtype of the dummy image it would probe the extractor with,
    and `Computed.num_features` spares that probe); we pass `normalize=False` anyway, which
    means "leave the inputs alone" in every torchmetrics version.
    """
    from torchmetrics.image.fid import FrechetInceptionDistance

    # every rank's features arrive gathered (distributed.gather_batches): sync_on_compute=False,
    # or under torchrun torchmetrics would gather them again and count each image twice

    for name, features in (("real", real), ("fake", fake)):
        if len(features) < 2:
            raise ValueError(f"fid needs at least 2 {name} images, got {len(features)}")
    metric = FrechetInceptionDistance(
        feature=Computed(real.shape[1]), normalize=False, sync_on_compute=False
    )
    metric.to(real.device)
    metric.update(real, real=True)
    metric.update(fake, real=False)
    return float(metric.compute())


@torch.no_grad()
def negative_elbo(
    vae: nn.Module, images: Images, batch_size: int = 500, seed: int = 0
) -> torch.Tensor:
    """Per-image negative ELBO in nats, (N,) float64 on CPU; lower means better explained.

    One reparameterised draw per image, from a generator seeded with `seed`, so the same images
    in the same order give the same numbers on the same device. Under torchrun each rank scores
    its block of rows, with the noise those rows get on a single process (`cpu_normal` draws
    row by row, so a rank starting at row `lo` first skips `lo` rows of noise).
    """
    vae.eval()
    device = device_of(vae)
    with seeded(seed, device):
        lo, _ = distributed.shard_rows(len(images), batch_size)  # type: ignore[arg-type]
        cpu_normal(lo, vae.latent_dim)  # type: ignore[arg-type]  # the rows of ranks before
        # torch types a Module's attributes as Tensor | Module, hence the ignore
        out = [vae.negative_elbo(x.to(device)).double().cpu() for x in batches(images, batch_size)]  # type: ignore[operator]
    out = distributed.gather_batches(out, torch.device("cpu"))
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.float64)
