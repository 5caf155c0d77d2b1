"""Unlearning methods: one file each, all behind the `UnlearningMethod` protocol.

A method takes the original checkpoint, the forget set D_f and the retain set D_r, and returns
a new generator; it never changes `ckpt.model` in place. Its hyperparameters are a dataclass
(`Config`) whose defaults may depend on the checkpoint (`default_config`), so that
`unlearn forget model.safetensors --class 1` needs no other flag.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Protocol

from unlearn_cli.errors import UsageError

if TYPE_CHECKING:
    import torch
    from torch import nn

    from unlearn_cli.engine.checkpoint import Checkpoint
    from unlearn_cli.engine.progress import Progress
    from unlearn_cli.models import VAE

METHOD_NAMES = ("redirect", "surgery", "ascent", "fu", "retrain")


class UnlearningMethod(Protocol):
    name: str
    title: str  # row label in comparison tables, as in the paper's Table 1

    def title_for(self, cfg: Any) -> str:
        """The row label for these settings (surgery and ascent name a restricted scope)."""

    def default_config(self, ckpt: Checkpoint) -> Any:
        """The method's hyperparameters for this checkpoint, before any user override."""

    def unlearn(
        self, ckpt: Checkpoint, forget, retain, cfg: Any, device: torch.device, progress: Progress
    ) -> nn.Module:
        """A new generator that has forgotten `forget` and kept `retain`."""


def get_method(name: str) -> UnlearningMethod:
    from unlearn_cli.errors import suggest

    cls: type[UnlearningMethod]
    if name == "redirect":
        from unlearn_cli.methods.redirect import Redirect as cls
    elif name == "surgery":
        from unlearn_cli.methods.surgery import Surgery as cls
    elif name == "ascent":
        from unlearn_cli.methods.ascent import Ascent as cls
    elif name == "fu":
        from unlearn_cli.methods.fu import FeatureUnlearning as cls
    elif name == "retrain":
        from unlearn_cli.methods.retrain import Retrain as cls
    else:
        raise UsageError(
            f"unknown method {name!r}{suggest(name, METHOD_NAMES)}; "
            f"choose one of: {', '.join(METHOD_NAMES)}"
        )
    return cls()


def option_types() -> dict[str, type]:
    """Every option a method's config has, with its type: what an experiment file may set for
    a method run (`seed` excepted: an experiment sets it per seed). Read from the config
    dataclasses themselves, so a new option needs no second list."""
    from unlearn_cli.methods.ascent import AscentConfig
    from unlearn_cli.methods.fu import FUConfig
    from unlearn_cli.methods.redirect import RedirectConfig
    from unlearn_cli.methods.retrain import RetrainConfig
    from unlearn_cli.methods.surgery import SurgeryConfig

    types = {"float": float, "int": int, "str": str, "bool": bool}
    found: dict[str, type] = {}
    for config in (RedirectConfig, SurgeryConfig, AscentConfig, FUConfig, RetrainConfig):
        for f in dataclasses.fields(config):
            if f.name != "seed":
                found.setdefault(f.name, types[str(f.type)])
    return found


def configure(method: UnlearningMethod, ckpt: Checkpoint, overrides: dict[str, Any]) -> Any:
    """The method's default config for `ckpt` with the given (non-None) overrides applied.

    An override the method has no field for is a usage error (e.g. --projection with ascent).
    """
    cfg = method.default_config(ckpt)
    fields = {f.name for f in dataclasses.fields(cfg)}
    given = {k: v for k, v in overrides.items() if v is not None}
    unknown = sorted(set(given) - fields)
    if unknown:
        flags = ", ".join("--" + k.replace("_", "-") for k in unknown)
        raise UsageError(
            f"{flags} does not apply to --method {method.name} (its settings: "
            f"{', '.join(sorted(fields))})"
        )
    cfg = dataclasses.replace(cfg, **given)
    if hasattr(cfg, "validate"):
        cfg.validate()
    return cfg


def default_lr(ckpt: Checkpoint) -> float:
    """The paper's one-shot learning rates: 5e-4 on MNIST, 1e-5 on CelebA."""
    return 5e-4 if ckpt.dataset.name == "mnist" else 1e-5


def scoped_parameters(model: VAE, scope: str) -> list[nn.Parameter]:
    """The parameters an unlearning update may change: `all`, or the `decoder`'s only."""
    if scope == "decoder":
        return list(model.decoder.parameters())
    if scope == "all":
        return list(model.parameters())
    raise UsageError(f"--params {scope!r}: use all or decoder")


def train_only(model: nn.Module, params: list[nn.Parameter]) -> None:
    """Let autograd compute gradients for `params` alone (backward skips the rest)."""
    chosen = {id(p) for p in params}
    for p in model.parameters():
        p.requires_grad_(id(p) in chosen)
