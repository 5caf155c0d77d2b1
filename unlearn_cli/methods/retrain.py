"""Retraining from scratch on D_r: the gold standard every unlearning method approximates.

It trains a fresh generator of the checkpoint's own architecture with the checkpoint's own
training config (epochs, batch size, learning rate, seed), on the retain set only: no forgotten
identity is ever seen.
"""

from __future__ import annotations

from dataclasses import dataclass

from unlearn_cli import defaults
from unlearn_cli.config import check_settings
from unlearn_cli.engine.device import seed_everything
from unlearn_cli.engine.train import TrainConfig, fit
from unlearn_cli.methods import Unlearned


@dataclass
class RetrainConfig:
    epochs: int = defaults.EPOCHS  # the checkpoint's own training epochs
    batch_size: int = defaults.BATCH_SIZE  # the checkpoint's own batch size
    lr: float = defaults.LR  # the checkpoint's own learning rate
    seed: int = defaults.SEED  # the checkpoint's own seed

    def validate(self) -> None:
        check_settings(self, positive=("lr",), at_least_one=("epochs", "batch_size"))


class Retrain:
    name = "retrain"
    title = "RETRAIN"

    def title_for(self, cfg) -> str:
        return self.title

    def default_config(self, ckpt) -> RetrainConfig:
        return RetrainConfig(**defaults.training(ckpt.training))

    def unlearn(self, ckpt, forget, retain, cfg: RetrainConfig, device, progress) -> Unlearned:
        from unlearn_cli.models import VAE, VAEConfig

        seed_everything(cfg.seed)
        model = VAE.from_config(VAEConfig(**ckpt.model_config))
        train_cfg = TrainConfig(cfg.epochs, cfg.batch_size, cfg.lr, cfg.seed)
        # torch types a Module's attributes as Tensor | Module, hence the ignore
        fit(model, retain, train_cfg, device, lambda m, x, y: m.loss(x), progress, "retrain")  # type: ignore[operator]
        return Unlearned(model)
