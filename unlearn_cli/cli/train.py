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
    print_json,
)
from unlearn_cli.cli.train_settings import (
    check_settings,
    classes_of,
    dataset_spec,
    default_out,
    model_options,
    settings_of,
)

if TYPE_CHECKING:
    from unlearn_cli.data.spec import DatasetSpec
    from unlearn_cli.engine.checkpoint import Checkpoint
    from unlearn_cli.engine.train import TrainConfig


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
    from unlearn_cli.engine.train import judge_config, train_judge, train_vae, vae_config

    options = model_options(s, kind)
    if kind == "vae":
        preset = vae_config(spec, **options)  # checked before the data is read
        if requests:  # validate the manifest against the data before training
            resolve_all(requests, load_split(spec), spec)
        return train_vae(spec, preset, cfg, dev, progress, data=training_set(spec))
    return train_judge(spec, judge_config(spec, **options), cfg, dev, progress)


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
        str | None,
        typer.Option(
            help="mnist (embedded), celeba or folder (DIR/train/<class>/<image>; both need "
            "--data-dir)."
        ),
    ] = None,
    data_dir: DataDirOpt = None,
    classes: Annotated[
        str | None,
        typer.Option(
            help="MNIST digits (or a folder's classes) to train on, e.g. 1,3,8 (the paper's "
            "MNIST138). Default: all."
        ),
    ] = None,
    attribute: Annotated[
        str | None,
        typer.Option(help="Attribute a judge classifies (CelebA, attributes.csv), e.g. Male."),
    ] = None,
    image_size: Annotated[
        int | None,
        typer.Option(
            help="Resize and centre-crop to N x N (folder, CelebA). \\[default: the "
            "images' side, at most 64; CelebA 64]"
        ),
    ] = None,
    arch: Annotated[
        str | None,
        typer.Option(
            help="VAE: mlp or conv; judge: allcnn or resnet18. \\[default: mlp/allcnn for grey "
            f"images up to {defaults.SMALL_GREY} px, conv/resnet18 otherwise]"
        ),
    ] = None,
    widths: Annotated[
        str | None,
        typer.Option(
            help="Layer widths: the VAE's MLP widths or conv channels, e.g. 32,64,128,256; "
            "AllCNN's first width."
        ),
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
        int | None, typer.Option(help="VAE latent size. \\[default: 16 mlp, 64 conv]")
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
    s = settings_of(
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
            image_size=image_size,
            arch=arch,
            widths=widths,
        ),
    )
    kind, name = s.get("model", "vae"), s.get("dataset", "mnist")
    check_settings(s, kind, name, download)
    digits = classes_of(s.get("classes"), name)

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
