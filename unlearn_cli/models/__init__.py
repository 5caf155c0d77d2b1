"""Generators (VAEs) and judge classifiers, each with a config dataclass and named presets."""

from unlearn_cli.models.judge import JudgeConfig, build_judge
from unlearn_cli.models.vae import VAE, VAEConfig

__all__ = ["VAE", "VAEConfig", "JudgeConfig", "build_judge"]
