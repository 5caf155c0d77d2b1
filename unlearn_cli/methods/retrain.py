"""Retraining from scratch on D_r: the gold standard every unlearning method approximates.

It trains a fresh generator of the checkpoint's own architecture with the checkpoint's own
training config (epochs, batch size, learning rate, seed), on the retain set only: no forgotten
identity is ever seen.
"""

from __future__ import annotations

from unlearn_cli import defaults
from unlearn_cli.engine.device import seed_everything
from unlearn_cli.engine.train import TrainConfig, fit
from unlearn_cli.methods import Unlearned
from unlearn_cli.methods.settings import RetrainConfig


class Retrain:
    name = "retrain"
    title = "RETRAIN"

    def title_for(self, cfg) -> str:
        return self.title

    def default_config(self, ckpt) -> RetrainConfig:
        return RetrainConfig(**defaults.training(ckpt.training))

    def unlearn(
        self, ckpt, forget, retain, cfg: RetrainConfig, device, progress, heldout=None
    ) -> Unlearned:
        from unlearn_cli.models import VAE, VAEConfig

        seed_everything(cfg.seed)
        model = VAE.from_config(VAEConfig(**ckpt.model_config))
        train_cfg = TrainConfig(cfg.epochs, cfg.batch_size, cfg.lr, cfg.seed)
        # torch types a Module's attributes as Tensor | Module, hence the ignore
        fit(model, retain, train_cfg, device, lambda m, x, y: m.loss(x), progress, "retrain")  # type: ignore[operator]
        return Unlearned(model)
