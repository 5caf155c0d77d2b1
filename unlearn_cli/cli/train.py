"""`unlearn train`: a generator (VAE) or a judge classifier, from scratch."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from unlearn_cli import defaults
from unlearn_cli.cli.output import (
    DataDirOpt,
    JsonOpt,
    OptionalDeviceOpt,
    handle_errors,
    key_value_table,
    note,
    out,
    parse_int_list,
    print_json,
)

if TYPE_CHECKING:
    from unlearn_cli.data.spec import DatasetSpec
    from unlearn_cli.engine.checkpoint import Checkpoint
    from unlearn_cli.engine.train import TrainConfig

TRAIN_KEYS: dict[str, type | tuple[type, ...]] = {
    "model": str,
    "dataset": str,
    "data_dir": str,
    "classes": (list, str, int),
    "attribute": str,
    "epochs": int,
    "batch_size": int,
    "lr": float,
    "latent_dim": int,
    "seed": int,
    "device": str,
    "out": str,
    "exclude": str,
    "limit": int,
}


def _settings(config: Path | None, flags: dict) -> dict:
    """Values from --config, overridden by the flags the user gave."""
    from unlearn_cli.config import check_fields, load_yaml
    from unlearn_cli.errors import ConfigError

    values: dict = {}
    if config is not None:
        problems: list[str] = []
        data = load_yaml(config)
        values = dict(
            check_fields(data if data is not None else {}, TRAIN_KEYS, "config", problems)
        )
        if problems:
            raise ConfigError(str(config), problems)
        if "exclude" in values:  # manifests named in a config are relative to it
            values["exclude"] = str(config.parent / values["exclude"])
    values.update({k: v for k, v in flags.items() if v is not None})
    return values


def _classes(value) -> tuple[int, ...] | None:
    from unlearn_cli.errors import UsageError

    if value is None:
        return None
    items = parse_int_list(str(value), "--classes") if not isinstance(value, list) else value
    bad = [c for c in items if not isinstance(c, int) or not 0 <= c <= 9]
    if bad:
        raise UsageError(f"--classes: {bad[0]} is not an MNIST digit; use digits 0-9, e.g. 1,3,8")
    if len(set(items)) < 2:
        raise UsageError(
            "--classes needs at least two distinct digits (a judge must tell them "
            "apart, and forgetting one must leave another)"
        )
    return tuple(sorted(set(items)))


def default_out(kind: str, spec) -> Path:
    name = spec.name + ("".join(map(str, spec.classes)) if spec.classes else "")
    if spec.attribute:
        name += f"-{spec.attribute}"
    if spec.exclude:
        name += "-retrain"
    return Path(f"{kind}-{name}.safetensors")


def check_settings(s: dict, kind: str, name: str, download: bool) -> None:
    """Refuse settings that contradict each other, before anything heavy is imported."""
    from unlearn_cli.errors import UsageError

    if kind not in ("vae", "judge"):
        raise UsageError(f"--model {kind!r}: use vae or judge")
    if name == "celeba" and kind == "judge" and not s.get("attribute"):
        raise UsageError("a CelebA judge classifies one attribute: add --attribute, e.g. Male")
    if s.get("attribute") and (kind == "vae" or name != "celeba"):
        raise UsageError(
            "--attribute names the CelebA attribute a judge classifies; a VAE "
            "learns all of CelebA (forget an attribute with `unlearn forget`)"
        )
    if name == "celeba" and s.get("classes") is not None:
        raise UsageError("--classes selects MNIST digits; CelebA has attributes instead")
    if download and (name != "mnist" or not s.get("data_dir")):
        raise UsageError(
            "--download fetches MNIST into --data-dir; name the folder with "
            "--data-dir (the embedded MNIST needs no download)"
        )
    if s.get("exclude") and kind == "judge":
        raise UsageError("--exclude builds a retrain reference VAE; a judge must see every class")


def dataset_spec(s: dict, name: str, digits: tuple[int, ...] | None, requests: list) -> DatasetSpec:
    """The training data: the dataset, its folder, digits, size limit and exclusions."""
    from unlearn_cli.data.spec import DatasetSpec

    root = str(Path(s["data_dir"]).expanduser().resolve()) if s.get("data_dir") else None
    return DatasetSpec(
        name=name,
        root=root,
        classes=digits,
        attribute=s.get("attribute"),
        exclude=tuple(r.to_dict() for r in requests),
        limit=s.get("limit"),
    )


def train_config(s: dict, kind: str) -> TrainConfig:
    """Epochs, batch size, learning rate and seed, with the defaults of a VAE or a judge."""
    from unlearn_cli.engine.train import TrainConfig

    return TrainConfig.of(s, kind)


def output_path(s: dict, kind: str, spec: DatasetSpec, force: bool) -> Path:
    """The checkpoint to write: --out, or a name derived from the model and data that an
    existing file may take only with --force."""
    from unlearn_cli.engine.checkpoint import check_writable
    from unlearn_cli.errors import UsageError

    target = Path(s["out"]) if s.get("out") else default_out(kind, spec)
    check_writable(target)
    if target.exists() and not (force or s.get("out")):
        raise UsageError(f"{target} exists; pass --out {target} or --force to overwrite it")
    return target


def fit(
    kind: str, s: dict, spec: DatasetSpec, cfg: TrainConfig, dev, progress, requests: list
) -> Checkpoint:
    """Train the VAE (on the training set minus the exclusions) or the judge."""
    from unlearn_cli.data.requests import resolve_all, training_set
    from unlearn_cli.data.spec import load_split
    from unlearn_cli.engine.train import train_judge, train_vae
    from unlearn_cli.models import JudgeConfig, VAEConfig

    if kind == "vae":
        if requests:  # validate the manifest against the data before training
            resolve_all(requests, load_split(spec), spec)
        preset = VAEConfig.from_name(spec.name, latent_dim=s.get("latent_dim"))
        return train_vae(spec, preset, cfg, dev, progress, data=training_set(spec))
    return train_judge(
        spec, JudgeConfig.from_name(spec.name, num_classes=spec.num_classes), cfg, dev, progress
    )


TRAIN_EXAMPLES = (
    "unlearn train --classes 1,3,8",
    "unlearn train --model judge --classes 1,3,8",
    "unlearn train --classes 1,3,8 --exclude requests.yaml",
    "unlearn train --dataset celeba --data-dir ~/data/celeba",
)


@handle_errors
def train(
    model: Annotated[
        str | None,
        typer.Option(
            help="What to train: vae (the generator) or judge (the classifier evaluate uses)."
        ),
    ] = None,
    dataset: Annotated[
        str | None, typer.Option(help="mnist (embedded) or celeba (needs --data-dir).")
    ] = None,
    data_dir: DataDirOpt = None,
    classes: Annotated[
        str | None,
        typer.Option(
            help="MNIST digits to train on, e.g. 1,3,8 (the paper's MNIST138). Default: all ten."
        ),
    ] = None,
    attribute: Annotated[
        str | None, typer.Option(help="CelebA attribute a judge classifies, e.g. Male.")
    ] = None,
    epochs: Annotated[
        int | None,
        typer.Option(
            help="Passes over the training set. "
            f"\\[default: {defaults.EPOCHS} for a VAE, {defaults.JUDGE_EPOCHS} for a judge]"
        ),
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option(help=f"\\[default: {defaults.BATCH_SIZE}]")
    ] = None,
    lr: Annotated[
        float | None, typer.Option(help=f"Adam learning rate. \\[default: {defaults.LR:g}]")
    ] = None,
    latent_dim: Annotated[
        int | None, typer.Option(help="VAE latent size. \\[default: 16 MNIST, 64 CelebA]")
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help="Same seed, same device: same weights. \\[default: 0]")
    ] = None,
    device: OptionalDeviceOpt = None,
    out_path: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Checkpoint to write (.safetensors). \\[default: derived from the model and data]",
        ),
    ] = None,
    config: Annotated[
        Path | None, typer.Option(help="YAML file of these settings; flags override it.")
    ] = None,
    limit: Annotated[
        int | None, typer.Option(help="Use only the first N samples of each split (quick runs).")
    ] = None,
    exclude: Annotated[
        Path | None,
        typer.Option(
            help="Forget-request manifest whose samples are left "
            "out: the retrain-from-scratch reference."
        ),
    ] = None,
    download: Annotated[
        bool,
        typer.Option(
            "--download",
            help="Download MNIST into --data-dir first (torchvision's mirrors; needs a network).",
            metavar="",
        ),
    ] = False,
    json_out: JsonOpt = False,
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite an existing output file.", metavar="")
    ] = False,
) -> None:
    """Train a VAE or a judge from scratch and write a self-describing checkpoint."""
    s = _settings(
        config,
        dict(
            model=model,
            dataset=dataset,
            data_dir=str(data_dir) if data_dir else None,
            classes=classes,
            attribute=attribute,
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            latent_dim=latent_dim,
            seed=seed,
            device=device,
            out=str(out_path) if out_path else None,
            exclude=str(exclude) if exclude else None,
            limit=limit,
        ),
    )
    kind, name = s.get("model", "vae"), s.get("dataset", "mnist")
    check_settings(s, kind, name, download)
    digits = _classes(s.get("classes"))

    import torch  # noqa: F401  (heavy imports only once the arguments are known to be sane)

    from unlearn_cli.cli.progress import RichProgress
    from unlearn_cli.data.requests import load_manifest
    from unlearn_cli.engine.checkpoint import check_not_input, save_checkpoint
    from unlearn_cli.engine.device import resolve_device

    requests = load_manifest(s["exclude"]) if s.get("exclude") else []
    spec = dataset_spec(s, name, digits, requests)
    cfg = train_config(s, kind)
    dev = resolve_device(s.get("device", "auto"))
    target = output_path(s, kind, spec, force)
    check_not_input(target, (config, s.get("exclude")), "--out")
    if download:
        from unlearn_cli import distributed
        from unlearn_cli.data.mnist import download_mnist

        assert spec.root is not None  # --download without --data-dir was refused above
        if distributed.is_main():  # under torchrun one download, which the others wait for
            download_mnist(spec.root)
        distributed.barrier()
    ckpt = fit(kind, s, spec, cfg, dev, RichProgress(), requests)
    save_checkpoint(ckpt, target)
    note(f"wrote {target}")
    summary = {
        "checkpoint": str(target),
        "kind": kind,
        "dataset": spec.describe(),
        "samples": ckpt.num_samples,
        "epochs": cfg.epochs,
        "device": str(dev),
        "train_seconds": ckpt.train_seconds,
        **ckpt.metrics,
    }
    if json_out:
        print_json(summary)
    else:
        out.print(key_value_table(f"trained {kind}", summary))
