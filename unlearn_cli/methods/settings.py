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

SCOPES = ("all", "decoder")  # what an update may change: `methods.scoped_parameters`
OPTIMIZERS = ("adam", "sgd")
PAPER_LR = {"mnist": 5e-4, "celeba": 1e-5}  # the paper's one-shot learning rates (A.1)
WEIGHTINGS = ("logged", "code")  # uno's two weightings of its loss: `methods.uno.WEIGHTS`


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


ORIGINAL_BATCH = "the checkpoint's"
ORIGINAL_LR = "the checkpoint's"
PAPER_LR_SHOWN = "5e-4 on MNIST, 1e-5 on CelebA, as the paper"


@dataclass
class RedirectConfig(Settings):
    """redirect's settings: each one a user has a reason to change (its design's fixed values
    are constants in methods/redirect.py, and docs/methods.md says why)."""

    # chosen on MNIST138 and ten digits, then held fixed for every target (docs/benchmarks.md)
    lr: float = setting(1.5e-4, "step size", positive=True)
    batch_size: int = setting(defaults.BATCH_SIZE, "images per step", ORIGINAL_BATCH, minimum=1)
    epochs: int = setting(1, "passes over D_f", minimum=0)  # 0 refits the prior only
    params: str = setting(
        "decoder",
        "what the update trains: decoder or all (the paper's scope)",
        choices=SCOPES,
    )
    retain_epochs: float = setting(
        0.1,
        "passes at most over D_r of plain training first; 0 skips them",
        minimum=0,
    )
    retain_lr: float = setting(
        defaults.LR, "step size of that training", ORIGINAL_LR, positive=True
    )
    # chosen on the ten-digit 8 and 9, then held fixed for every target (docs/benchmarks.md)
    npo_weight: float = setting(
        10.0,
        "weight of the bounded push away from each forgotten image (NPO); 0 turns it off",
        minimum=0,
    )
    match_steps: int = setting(
        1000,
        "steps at most raising memorised samples' loss to where it would be unseen (it "
        "stops once there; where they could read as many images as retraining, it retrains "
        "instead); 0 skips them",
        minimum=0,
    )
    seed: int = setting(0, "seeds the batches")


@dataclass
class SurgeryConfig(Settings):
    lr: float = setting(5e-4, "step size", PAPER_LR_SHOWN, positive=True)  # paper, Appendix A.1
    batch_size: int = setting(
        defaults.BATCH_SIZE, "images per step", ORIGINAL_BATCH, minimum=1
    )  # paper
    # the paper's one shot; 0 changes nothing, which `forget` then says (its no-op warning)
    epochs: int = setting(1, "passes over D_f", minimum=0)
    # the decoder by default because the encoder absorbs the ascent (docs/methods.md), and the
    # row label says so (Surgery.title_for)
    params: str = setting(
        "decoder", "what the update trains: decoder or all (the paper's scope)", choices=SCOPES
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
        "decoder", "what the update trains: decoder or all (the paper's scope)", choices=SCOPES
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
class UnoConfig(Settings):
    """uno's settings, as its authors' code runs it (docs/methods.md); its fixed values are
    constants in methods/uno.py."""

    lr: float = setting(1e-3, "step size", positive=True)  # the code's Adam
    # the published runs' batch size; the fixed latents are as many, as in the code
    batch_size: int = setting(128, "images per step, and latents in the fixed batch", minimum=1)
    # the published runs: one pass over the shorter of D_f and D_r
    epochs: int = setting(
        1,
        "passes at most over paired D_f and D_r batches; it stops once the judge calls under "
        "2% of the fixed batch the forgotten class",
        minimum=1,
    )
    weighting: str = setting(
        "logged",
        "orthogonality and uniformity weights: logged (0 and 1000, what the published runs "
        "ran) or code (1000 and 0, the code today)",
        choices=WEIGHTINGS,
    )
    judge: str = setting(
        "",
        "judge checkpoint whose classifier sits in uno's loss (required; compare passes the "
        "experiment's)",
        "none",
    )
    seed: int = setting(0, "seeds the batches and the fixed latents")


@dataclass
class RetrainConfig(Settings):
    epochs: int = setting(defaults.EPOCHS, "passes over D_r", "the checkpoint's", minimum=1)
    batch_size: int = setting(defaults.BATCH_SIZE, "images per step", ORIGINAL_BATCH, minimum=1)
    lr: float = setting(defaults.LR, "step size", "the checkpoint's", positive=True)
    seed: int = setting(
        defaults.SEED, "seeds the batches (and the new weights)", "the checkpoint's"
    )


@dataclass(frozen=True)
class Registered:
    """A method by name: its settings, and where its class lives (imported on first use, since
    it imports torch)."""

    config: type
    module: str
    cls: str


METHODS: dict[str, Registered] = {
    "redirect": Registered(RedirectConfig, "unlearn_cli.methods.redirect", "Redirect"),
    "surgery": Registered(SurgeryConfig, "unlearn_cli.methods.surgery", "Surgery"),
    "ascent": Registered(AscentConfig, "unlearn_cli.methods.ascent", "Ascent"),
    "fu": Registered(FUConfig, "unlearn_cli.methods.fu", "FeatureUnlearning"),
    "uno": Registered(UnoConfig, "unlearn_cli.methods.uno", "Uno"),
    "retrain": Registered(RetrainConfig, "unlearn_cli.methods.retrain", "Retrain"),
}
METHOD_NAMES = tuple(METHODS)


def config_of(name: str) -> type:
    return METHODS[name].config


def settings_of(name: str) -> dict[str, dataclasses.Field]:
    """Method `name`'s settings by name, in their declared order."""
    return {f.name: f for f in dataclasses.fields(METHODS[name].config)}


def all_settings() -> dict[str, type]:
    """Every setting of any method, with its type, in the order the methods declare them:
    the flags of `unlearn forget` and the method keys of an experiment file."""
    types = {"float": float, "int": int, "str": str, "bool": bool}
    found: dict[str, type] = {}
    for name in METHODS:
        for f in settings_of(name).values():
            found.setdefault(f.name, types[str(f.type)])
    return found


def choices_of(name: str) -> tuple[str, ...]:
    """The values setting `name` takes, across the methods that have it (empty: any)."""
    seen: list[str] = []
    for method in METHODS:
        f = settings_of(method).get(name)
        for c in (f.metadata.get("choices") or ()) if f else ():
            if c not in seen:
                seen.append(c)
    return tuple(seen)


def help_for(name: str) -> str:
    """A setting's help for the command line: what it is to each method that has it, and its
    default there; methods that say the same thing share a line, and the method names go when
    every method says it."""
    said: dict[str, dict[str, list[str]]] = {}  # help -> default -> methods
    for method in METHODS:
        f = settings_of(method).get(name)
        if f is not None:
            default = f"{f.default:g}" if isinstance(f.default, float) else str(f.default).lower()
            shown = f.metadata["shown"] or default
            said.setdefault(f.metadata["help"], {}).setdefault(shown, []).append(method)
    parts = []
    for text, by_default in said.items():
        methods = [m for ms in by_default.values() for m in ms]
        if len(by_default) == 1:
            default = next(iter(by_default))
        else:
            default = "; ".join(f"{', '.join(ms)} {d}" for d, ms in by_default.items())
        who = "" if len(said) == 1 and len(methods) == len(METHODS) else f"{', '.join(methods)}: "
        parts.append(f"{who}{text} \\[default: {default}]")
    return "; ".join(parts) + "."
