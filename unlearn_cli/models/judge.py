"""Judge classifiers: they decide whether a generated image shows the forgotten feature, and
their penultimate layer is the feature space of FID."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from unlearn_cli.errors import UsageError
from unlearn_cli.models.vae import default_arch


@dataclass
class JudgeConfig:
    arch: str = "allcnn"  # "allcnn" (Springenberg et al. 2014, as in the paper) or "resnet18"
    channels: int = 1
    image_size: int = 28
    num_classes: int = 10  # the model's digits, or 2 for a CelebA attribute
    width: int = 32  # AllCNN channels of the first stage; doubles in the second

    @classmethod
    def from_name(cls, name: str, **overrides) -> JudgeConfig:
        given = {"celeba": dict(num_classes=2), "mnist": {}}[name] | overrides
        channels, size = given.pop("channels", None), given.pop("image_size", None)
        default = {"mnist": (1, 28), "celeba": (3, 64)}[name]
        return cls.for_images(channels or default[0], size or default[1], **given)

    @classmethod
    def for_images(cls, channels: int, image_size: int, **overrides) -> JudgeConfig:
        """AllCNN for small grey images (as the VAE's MLP), ResNet18 for colour or larger ones."""
        given = {k: v for k, v in overrides.items() if v is not None}
        small = default_arch(channels, image_size) == "mlp"
        arch = given.get("arch") or ("allcnn" if small else "resnet18")
        if arch not in ("allcnn", "resnet18"):
            raise UsageError(f"unknown judge arch {arch!r}; use allcnn or resnet18", "arch")
        return cls(**{"channels": channels, "image_size": image_size, **given, "arch": arch})

    def to_dict(self) -> dict:
        return asdict(self)


class AllCNN(nn.Module):
    """Convolutions only, strided instead of pooled; the final linear layer on globally averaged
    features equals AllCNN's 1x1 class convolution followed by averaging."""

    def __init__(self, channels: int, num_classes: int, width: int = 32):
        super().__init__()
        w = width

        def block(a, b, stride):
            return [nn.Conv2d(a, b, 3, stride, 1), nn.BatchNorm2d(b), nn.ReLU()]

        self.body = nn.Sequential(
            *block(channels, w, 1),
            *block(w, w, 2),  # 28 -> 14
            *block(w, 2 * w, 1),
            *block(2 * w, 2 * w, 2),  # 14 -> 7
            *block(2 * w, 2 * w, 1),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.head = nn.Linear(2 * w, num_classes)
        self.num_features = 2 * w

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)  # (B, C, H, W) -> (B, 2w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))  # (B, C, H, W) -> (B, classes)


class ResNet18(nn.Module):
    """torchvision's ResNet18, no pretrained weights (nothing is downloaded)."""

    def __init__(self, channels: int, num_classes: int):
        super().__init__()
        from torchvision.models import resnet18

        net = resnet18(weights=None, num_classes=num_classes)
        if channels != 3:
            net.conv1 = nn.Conv2d(channels, 64, 7, 2, 3, bias=False)
        self.head = net.fc
        net.fc = nn.Identity()
        self.body = net
        self.num_features = 512

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)  # (B, 3, 64, 64) -> (B, 512)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def build_judge(cfg: JudgeConfig) -> nn.Module:
    if cfg.arch == "allcnn":
        return AllCNN(cfg.channels, cfg.num_classes, cfg.width)
    if cfg.arch == "resnet18":
        return ResNet18(cfg.channels, cfg.num_classes)
    raise ValueError(f"unknown judge arch {cfg.arch!r}")
