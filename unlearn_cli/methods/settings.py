"""Each method's settings: one dataclass per method, whose fields are the settings a user may
give (as flags of `unlearn forget` or keys of a `compare` experiment), with their defaults, ranges
and help. The command line's help and an experiment's method keys are read from here, so a new
setting needs no second list. Torch-free, so that `unlearn forget --help` stays instant.

A default that depends on the checkpoint (the learning rate on CelebA, the original training's
batch size, what retrain repeats) is filled in by the method's `default_config`; `shown` says
what it is.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from unlearn_cli import defaults
from unlearn_cli.config import check_settings

METHOD_NAMES = ("redirect", "surgery", "ascent", "fu", "retrain")
SCOPES = ("all", "decoder")  # what an update may change: `methods.scoped_parameters`
OPTIMIZERS = ("adam", "sgd")
PAPER_LR = {"mnist": 5e-4, "celeba": 1e-5}  # the paper's one-shot learning rates (A.1)


def setting(
    default: Any,
    help: str,
    shown: str | None = None,
    *,
    minimum: int | None = None,
    positive: bool = False,
    choices: tuple[str, ...] | None = None,
) -> Any:
    """A field with its help, how its default reads when the checkpoint sets it, and its range:
    at least `minimum`, above 0 (`positive`), or one of `choices`."""
    rule = {"minimum": minimum, "positive": positive, "choices": choices}
    return dataclasses.field(default=default, metadata={"help": help, "shown": shown, **rule})


class Settings:
    """A method's settings dataclass: `validate` checks each field against its `setting` range."""

    def validate(self) -> None:
        fields = dataclasses.fields(self)  # type: ignore[arg-type]
        check_settings(
            self,
            positive=tuple(f.name for f in fields if f.metadata.get("positive")),
            minimum={
                f.name: f.metadata["minimum"]
                for f in fields
                if f.metadata.get("minimum") is not None
            },
            choices={f.name: f.metadata["choices"] for f in fields if f.metadata.get("choices")},
        )


ORIGINAL_BATCH = "the checkpoint's training batch size"
ORIGINAL_LR = "the checkpoint's training learning rate"
PAPER_LR_SHOWN = "5e-4 on MNIST, 1e-5 on CelebA, as the paper"


@dataclass
class RedirectConfig(Settings):
    # with "share" weighting, chosen on seed 0 of MNIST138 forgetting 1, 3 and 8 and of ten
    # digits forgetting 3 and 7 (README, "Redirect"), with the diagonal refit and latent targets
    # of that release, then held fixed for every target and seed
    lr: float = setting(1.5e-4, "step size", positive=True)
    batch_size: int = setting(defaults.BATCH_SIZE, "images per step", ORIGINAL_BATCH, minimum=1)
    epochs: int = setting(1, "passes over D_f", minimum=0)  # 0 refits the prior only
    min_steps: int = setting(50, "steps a small request still gets, cycling over D_f", minimum=0)
    params: str = setting(
        "decoder",
        "what the steps train: decoder or all (the refit also moves the encoder's head)",
        choices=SCOPES,
    )
    projection: str = setting(
        "conflict",
        "remove the step's component along the retain gradient: conflict (when they "
        "conflict), always or none",
        choices=("always", "conflict", "none"),
    )
    weighting: str = setting(
        "share",
        "share (weigh the redirect and retain losses by the shares of D_f and D_r), equal, or "
        "prior (share, each redirect draw also weighted by the prior's density there relative "
        "to a typical retained draw's, up to equal)",
        choices=("share", "equal", "prior"),
    )
    # 10: of 1, 3 and 10 on the ten-digit 8, seeds 1 and 2 (where the default without it
    # missed), the one with room on both sides (30 passes there too); then held fixed for every
    # target and seed (README, "Push away")
    npo_weight: float = setting(
        10.0,
        "weight of the bounded push of the decoder away from each forgotten image, beside the "
        "pull toward its target (NPO, Zhang et al. 2024; 0 turns it off)",
        minimum=0,
    )
    npo_beta: float = setting(
        0.1, "NPO's inverse temperature, per nat: the push fades past 1 / npo_beta", positive=True
    )
    retain_epochs: float = setting(
        0.25,
        "passes over D_r of plain training (every parameter) before the refit, at most; "
        "0 skips them",
        minimum=0,
    )
    retain_ratio: float = setting(
        10.0, "retained images that training sees per forgotten one, up to retain_epochs", minimum=0
    )
    retain_lr: float = setting(
        defaults.LR, "step size of that training", ORIGINAL_LR, positive=True
    )
    refit: bool = setting(True, "refit the prior first; false redirects in the old latent space")
    refit_twice: bool = setting(
        False,
        "with refit: also refit before step 0, so that its training on D_r is under the "
        'refitted prior, then refit again (README, "Push away")',
    )
    covariance: str = setting(
        "full",
        "the refitted prior's Gaussian: diagonal (each dimension's spread) or full (with the "
        "correlations between dimensions)",
        choices=("diagonal", "full"),
    )
    bank_size: int = setting(4096, "retained samples encoded for the refit and the target bank")
    interior_k: int = setting(
        10, "a target's nearest bank neighbours that must all be retained", minimum=1
    )
    targets: str = setting(
        "local",
        "which interior decoding a forget sample is redirected to: latent (nearest to its "
        "posterior draw), pixel (nearest to its reconstruction, in pixel space) or local (of "
        "the local_k nearest to the draw, the one nearest to the reconstruction)",
        choices=("latent", "pixel", "local"),
    )
    local_k: int = setting(
        20, "with targets local: bank latents nearest to the draw to pick among", minimum=1
    )
    match_steps: int = setting(
        200,
        "steps at most of step 3: raise each forgotten sample's loss to where held-out data's "
        "sits, no further (0 skips it)",
        minimum=0,
    )
    seed: int = setting(0, "seeds the batches")

    def validate(self) -> None:
        super().validate()
        from unlearn_cli.errors import UsageError

        if self.bank_size <= self.interior_k:
            raise UsageError(
                f"must exceed interior_k ({self.interior_k}), got {self.bank_size}", "bank_size"
            )
        if self.refit_twice and not self.refit:
            raise UsageError("needs refit: drop it, or keep refit on", "refit_twice")


@dataclass
class SurgeryConfig(Settings):
    lr: float = setting(5e-4, "step size", PAPER_LR_SHOWN, positive=True)  # paper, Appendix A.1
    batch_size: int = setting(
        defaults.BATCH_SIZE, "images per step", ORIGINAL_BATCH, minimum=1
    )  # paper
    epochs: int = setting(1, "passes over D_f", minimum=1)  # the paper's one shot
    # the decoder by default because the encoder absorbs the ascent (README, "Which
    # parameters"), and the row label says so (Surgery.title_for)
    params: str = setting(
        "decoder", "what the update changes: decoder, or all (the paper's)", choices=SCOPES
    )
    projection: str = setting(
        "always",
        "project onto the retain gradient's normal: always (the paper) or conflict",
        choices=("always", "conflict"),
    )
    optimizer: str = setting(
        "adam", "adam (the paper) or sgd (a step is exactly -lr * d)", choices=OPTIMIZERS
    )
    repair_steps: int = setting(
        0,
        "retain-descent steps after the pass, projected to keep the forgetting (not the paper)",
        minimum=0,
    )
    seed: int = setting(0, "seeds the batches")


@dataclass
class AscentConfig(Settings):
    lr: float = setting(5e-4, "step size", PAPER_LR_SHOWN, positive=True)
    batch_size: int = setting(defaults.BATCH_SIZE, "images per step", ORIGINAL_BATCH, minimum=1)
    epochs: int = setting(1, "passes over D_f", minimum=1)
    # the decoder by default, as surgery, so the two differ only by the projection, and the
    # row label says so (Ascent.title_for)
    params: str = setting(
        "decoder", "what the update changes: decoder, or all (the paper's)", choices=SCOPES
    )
    optimizer: str = setting("adam", "adam or sgd", choices=OPTIMIZERS)
    seed: int = setting(0, "seeds the batches")


@dataclass
class FUConfig(Settings):
    lr: float = setting(5e-4, "step size", PAPER_LR_SHOWN, positive=True)
    batch_size: int = setting(
        defaults.BATCH_SIZE, "prior samples per step", ORIGINAL_BATCH, minimum=1
    )
    # the paper's "200 epochs" is ~10^4 (methods.fu.FeatureUnlearning)
    steps: int = setting(2000, "prior batches to train on", minimum=1)
    alpha: float = setting(3.0, "weight of the SSIM term on shifted samples", positive=True)
    seed: int = setting(0, "seeds the batches")  # of prior samples


@dataclass
class RetrainConfig(Settings):
    epochs: int = setting(defaults.EPOCHS, "passes over D_r", "the checkpoint's", minimum=1)
    batch_size: int = setting(defaults.BATCH_SIZE, "images per step", ORIGINAL_BATCH, minimum=1)
    lr: float = setting(defaults.LR, "step size", "the checkpoint's", positive=True)
    seed: int = setting(
        defaults.SEED, "seeds the batches (and the new weights)", "the checkpoint's"
    )


CONFIGS: dict[str, type] = dict(
    zip(METHOD_NAMES, (RedirectConfig, SurgeryConfig, AscentConfig, FUConfig, RetrainConfig))
)


def help_for(name: str) -> str:
    """A setting's help for the command line: what it is to each method that has it, and its
    default there; methods that say the same thing share a line."""
    said: dict[str, list[str]] = {}
    for method, config in CONFIGS.items():
        f = next((f for f in dataclasses.fields(config) if f.name == name), None)
        if f is not None:
            default = f"{f.default:g}" if isinstance(f.default, float) else str(f.default)
            shown = f.metadata["shown"] or default.lower()
            said.setdefault(f"{f.metadata['help']} \\[default: {shown}]", []).append(method)
    return "; ".join(f"{', '.join(methods)}: {text}" for text, methods in said.items()) + "."
