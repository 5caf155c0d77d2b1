"""Retraining from scratch on D_r: the gold standard every unlearning method approximates.

It trains a fresh generator of the checkpoint's own architecture with the checkpoint's own
training config (epochs, batch size, learning rate, seed), on the retain set only: no forgotten
identity is ever seen.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from unlearn_cli.engine.device import seed_everything
from unlearn_cli.engine.train import TrainConfig, fit
from unlearn_cli.errors import UsageError


@dataclass
class RetrainConfig:
    epochs: int = 20  # the checkpoint's own training epochs
    batch_size: int = 128  # the checkpoint's own batch size
    lr: float = 1e-3  # the checkpoint's own learning rate
    seed: int = 0  # the checkpoint's own seed

    def validate(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or not self.lr > 0:
            raise UsageError("--epochs and --batch-size must be at least 1, --lr positive")


class Retrain:
    name = "retrain"
    title = "RETRAIN"

    def title_for(self, cfg) -> str:
        return self.title

    def default_config(self, ckpt) -> RetrainConfig:
        t = ckpt.training
        return RetrainConfig(
            epochs=t.get("epochs", 20),
            batch_size=t.get("batch_size", 128),
            lr=t.get("lr", 1e-3),
            seed=t.get("seed", 0),
        )

    def unlearn(self, ckpt, forget, retain, cfg: RetrainConfig, device, progress) -> nn.Module:
        from unlearn_cli.models import VAE, VAEConfig

        seed_everything(cfg.seed)
        model = VAE.from_config(VAEConfig(**ckpt.model_config))
        train_cfg = TrainConfig(cfg.epochs, cfg.batch_size, cfg.lr, cfg.seed)
        # torch types a Module's attributes as Tensor | Module, hence the ignore
        fit(model, retain, train_cfg, device, lambda m, x, y: m.loss(x), progress, "retrain")  # type: ignore[operator]
        return model
