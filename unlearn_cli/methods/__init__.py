"""Unlearning methods: one file each, all behind the `UnlearningMethod` protocol.

A method takes the original checkpoint, the forget set D_f and the retain set D_r, and returns
a new generator; it never changes `ckpt.model` in place. Its hyperparameters are a dataclass
(`Config`) whose defaults may depend on the checkpoint (`default_config`), so that
`unlearn forget model.safetensors --class 1` needs no other flag.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from unlearn_cli import defaults
from unlearn_cli.errors import UsageError

if TYPE_CHECKING:
    import torch
    from torch import nn

    from unlearn_cli.data.images import Samples
    from unlearn_cli.engine.checkpoint import Checkpoint
    from unlearn_cli.engine.progress import Progress
    from unlearn_cli.models import VAE

from unlearn_cli.methods.settings import (
    METHOD_NAMES,
    METHODS,
    PAPER_LR,
    all_settings,
    config_of,
    settings_of,
)


class MethodConfig(Protocol):
    """A method's hyperparameters: a dataclass whose fields are the settings a user may give."""

    seed: int

    def validate(self) -> None:
        """A UsageError naming the first setting out of its range (by its field name)."""


@dataclass
class Unlearned:
    """What a method returns: the new generator, and what it measured on the way (e.g. fu's
    threshold and shifted fraction), which the lineage records."""

    model: nn.Module
    stats: dict[str, float] = field(default_factory=dict)


class UnlearningMethod(Protocol):
    name: str
    title: str  # row label in comparison tables, as in the paper's Table 1

    def title_for(self, cfg: Any) -> str:
        """The row label for these settings (surgery and ascent name a restricted scope)."""

    def default_config(self, ckpt: Checkpoint) -> Any:
        """The method's MethodConfig for this checkpoint, before any user override."""

    def unlearn(
        self,
        ckpt: Checkpoint,
        forget: Samples,
        retain: Samples,
        cfg: Any,
        device: torch.device,
        progress: Progress,
        heldout: Samples | None = None,
    ) -> Unlearned:
        """A new generator that has forgotten `forget` and kept `retain`; `ckpt.model` stays
        as it was. `heldout` (the dataset's test split, when there is one) is data the model
        never saw, for a method that measures what "unseen" looks like to the model."""


def get_method(name: str) -> UnlearningMethod:
    """The method registered as `name` (`settings.METHODS`)."""
    import importlib

    from unlearn_cli.errors import suggest

    if name not in METHODS:
        raise UsageError(
            f"unknown method {name!r}{suggest(name, METHOD_NAMES)}; "
            f"choose one of: {', '.join(METHOD_NAMES)}"
        )
    entry = METHODS[name]
    return getattr(importlib.import_module(entry.module), entry.cls)()


def check_options(name: str, options: dict[str, Any]) -> None:
    """A UsageError for the first of `options` that method `name` has no field for or that is
    out of its range, before any checkpoint is at hand (an experiment file is checked so)."""
    check_known(name, options)
    config_of(name)(**options).validate()


def check_known(name: str, options: dict[str, Any]) -> None:
    """A UsageError for the first of `options` that method `name` has no field for."""
    fields = settings_of(name)
    unknown = sorted(set(options) - set(fields))
    if unknown:
        raise UsageError(
            f"does not apply to the {name} method (its settings: {', '.join(sorted(fields))})",
            unknown[0],
        )


def option_types() -> dict[str, type]:
    """Every setting a method run of an experiment file may give, with its type (`seed`
    excepted: an experiment sets it per seed)."""
    return {name: kind for name, kind in all_settings().items() if name != "seed"}


def configure(method: UnlearningMethod, ckpt: Checkpoint, overrides: dict[str, Any]) -> Any:
    """The method's default config for `ckpt` with the given (non-None) overrides applied,
    validated. A setting the method has no field for is a usage error (projection with ascent).
    """
    given = {k: v for k, v in overrides.items() if v is not None}
    check_known(method.name, given)
    cfg: MethodConfig = method.default_config(ckpt)
    cfg = dataclasses.replace(cfg, **given)  # type: ignore[type-var]
    cfg.validate()
    return cfg


def original_batch_size(ckpt: Checkpoint) -> int:
    """The batch size the checkpoint was trained with, which the methods reuse (as the paper)."""
    return defaults.training(ckpt.training)["batch_size"]


def original_lr(ckpt: Checkpoint) -> float:
    """The learning rate the checkpoint was trained with (redirect's step 0 reuses it)."""
    return defaults.training(ckpt.training)["lr"]


def default_lr(ckpt: Checkpoint) -> float:
    """The paper's one-shot learning rates: 5e-4 on MNIST, 1e-5 on CelebA; on a folder dataset,
    that of the dataset whose VAE it uses (the MLP's MNIST, the convnet's CelebA)."""
    if ckpt.dataset.name in PAPER_LR:
        return PAPER_LR[ckpt.dataset.name]
    return PAPER_LR["celeba" if ckpt.model_config.get("arch") == "conv" else "mnist"]


def scoped_parameters(model: VAE, scope: str) -> list[nn.Parameter]:
    """The parameters an unlearning update may change: `all`, or the `decoder`'s only."""
    if scope == "decoder":
        return list(model.decoder.parameters())
    if scope == "all":
        return list(model.parameters())
    raise UsageError(f"{scope!r}: use all or decoder", "params")


def train_only(model: nn.Module, params: list[nn.Parameter]) -> None:
    """Let autograd compute gradients for `params` alone (backward skips the rest)."""
    chosen = {id(p) for p in params}
    for p in model.parameters():
        p.requires_grad_(id(p) in chosen)
