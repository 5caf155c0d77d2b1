"""Variational autoencoders: an MLP for small grey images (MNIST) and a convnet for colour or
larger ones (CelebA)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from unlearn_cli.defaults import SMALL_GREY
from unlearn_cli.errors import UsageError


@dataclass
class VAEConfig:
    arch: str = "mlp"  # "mlp": the paper's "stack of linear layers" (MNIST); "conv": CelebA
    channels: int = 1  # image channels: 1 for MNIST, 3 for CelebA
    image_size: int = 28  # square images; conv needs a multiple of 16
    hidden: tuple[int, ...] = (512, 256)  # MLP widths, or conv channels per stride-2 stage
    latent_dim: int = 16  # small enough that prior samples look like digits

    def __post_init__(self):
        self.hidden = tuple(self.hidden)
        if self.arch not in ("mlp", "conv"):
            raise ValueError(f"unknown VAE arch {self.arch!r}")
        if self.arch == "conv" and self.image_size % 2 ** len(self.hidden):
            raise UsageError(
                f"{self.image_size} does not suit the convolutional VAE, which halves the image "
                f"{len(self.hidden)} times: use a multiple of {2 ** len(self.hidden)}",
                "image_size",
            )

    @classmethod
    def from_name(cls, name: str, **overrides) -> VAEConfig:
        channels, size = overrides.pop("channels", None), overrides.pop("image_size", None)
        default = {"mnist": (1, 28), "celeba": (3, 64)}[name]
        return cls.for_images(channels or default[0], size or default[1], **overrides)

    @classmethod
    def for_images(cls, channels: int, image_size: int, **overrides) -> VAEConfig:
        """The preset of `arch` (by default the MLP for small grey images, MNIST's, and the
        convnet for colour or larger ones, CelebA's), at this image size."""
        given = {k: v for k, v in overrides.items() if v is not None}
        arch = given.get("arch") or default_arch(channels, image_size)
        preset = ARCH_PRESETS.get(arch, ARCH_PRESETS["mlp"])
        return cls(**{**preset, "channels": channels, "image_size": image_size, **given})

    def to_dict(self) -> dict:
        d = asdict(self)
        d["hidden"] = list(self.hidden)
        return d


ARCH_PRESETS = {
    "mlp": dict(arch="mlp", hidden=(512, 256), latent_dim=16),  # the paper's MNIST VAE
    "conv": dict(arch="conv", hidden=(32, 64, 128, 256), latent_dim=64),  # its CelebA VAE
}


def default_arch(channels: int, image_size: int) -> str:
    """The MLP for grey images of at most SMALL_GREY pixels a side, the convnet otherwise."""
    return "mlp" if channels == 1 and image_size <= SMALL_GREY else "conv"


def cpu_normal(rows: int, cols: int) -> torch.Tensor:
    """(rows, cols) standard normal noise from torch's global CPU generator, whose values for a
    row depend only on how many rows were drawn before it, not on how they were batched.

    On CUDA, `randn_like` draws depend on the tensor's shape, so a metric's noise would change
    with its batch size; on the CPU, torch fills a normal tensor of 16 values or more in blocks
    of 16, each from 16 consecutive uniforms, so rows padded to a multiple of 16 split at any
    row boundary (tests/test_vae.py checks it, should a torch release change that).
    """
    width = -(-cols // 16) * 16  # cols rounded up to a multiple of 16
    return torch.randn(rows, width)[:, :cols]  # (rows, width) -> (rows, cols)


def _mlp(widths: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(widths, widths[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(widths) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class VAE(nn.Module):
    """Gaussian encoder, Bernoulli decoder. `encoder` and `decoder` are separate submodules so
    unlearning can be scoped to the decoder's parameters."""

    def __init__(
        self, arch: str, channels: int, image_size: int, hidden: tuple[int, ...], latent_dim: int
    ) -> None:
        super().__init__()
        self.shape = (channels, image_size, image_size)
        self.latent_dim = latent_dim
        pixels = channels * image_size * image_size
        if arch == "mlp":
            self.encoder = nn.Sequential(
                nn.Flatten(),
                _mlp([pixels, *hidden]),
                nn.ReLU(),
                nn.Linear(hidden[-1], 2 * latent_dim),
            )
            self.decoder = nn.Sequential(
                _mlp([latent_dim, *reversed(hidden)]), nn.ReLU(), nn.Linear(hidden[0], pixels)
            )
        else:
            side = image_size // 2 ** len(hidden)
            enc: list[nn.Module] = []
            for a, b in zip((channels, *hidden), hidden):
                enc += [nn.Conv2d(a, b, 4, 2, 1), nn.LeakyReLU(0.2)]
            self.encoder = nn.Sequential(
                *enc, nn.Flatten(), nn.Linear(hidden[-1] * side * side, 2 * latent_dim)
            )
            dec: list[nn.Module] = [
                nn.Linear(latent_dim, hidden[-1] * side * side),
                nn.Unflatten(1, (hidden[-1], side, side)),
            ]
            rev = tuple(reversed(hidden))
            for a, b in zip(rev, rev[1:]):
                dec += [nn.LeakyReLU(0.2), nn.ConvTranspose2d(a, b, 4, 2, 1)]
            dec += [nn.LeakyReLU(0.2), nn.ConvTranspose2d(rev[-1], channels, 4, 2, 1)]
            self.decoder = nn.Sequential(*dec)

    @classmethod
    def from_config(cls, cfg: VAEConfig) -> VAE:
        return cls(cfg.arch, cfg.channels, cfg.image_size, cfg.hidden, cfg.latent_dim)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.encoder(x).chunk(2, dim=1)  # (B, C, H, W) -> 2 x (B, z)
        return mu, logvar

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z).view(-1, *self.shape)  # (B, z) -> (B, C, H, W)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Mean images in [0, 1]."""
        return torch.sigmoid(self.decode_logits(z))

    def negative_elbo(self, x: torch.Tensor) -> torch.Tensor:
        """Per-sample negative ELBO in nats: reconstruction (Bernoulli) plus KL to N(0, I).

        The reparameterisation noise comes from torch's global CPU generator (`cpu_normal`),
        so a seed gives the same noise on every device and for every batch size.
        """
        mu, logvar = self.encode(x)
        eps = cpu_normal(len(x), self.latent_dim).to(device=mu.device, dtype=mu.dtype)  # (B, z)
        z = mu + eps * torch.exp(0.5 * logvar)  # reparameterised (B, z)
        logits = self.decode_logits(z)
        rec = F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(1)
        return rec + kl  # (B,)

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        """The training loss: mean negative ELBO of the batch."""
        return self.negative_elbo(x).mean()
