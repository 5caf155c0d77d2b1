"""The settings of `unlearn train`: from its flags and --config, checked against each other, and
turned into the dataset spec and model options before anything heavy is imported."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from unlearn_cli.cli.output import parse_int_list

if TYPE_CHECKING:
    from unlearn_cli.data.spec import DatasetSpec

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
    "image_size": int,
    "arch": str,
    "widths": (list, str, int),
}
ARCHS = {"vae": ("mlp", "conv"), "judge": ("allcnn", "resnet18")}
# wider than any VAE or judge of images this size needs; past it memory runs out, not training
MAX_WIDTH = 16384


def settings_of(config: Path | None, flags: dict) -> dict:
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


def classes_of(value, name: str) -> tuple | None:
    """MNIST digits, or a folder's class names; at least two."""
    from unlearn_cli.errors import UsageError

    if value is None:
        return None
    if name == "folder":
        items = value if isinstance(value, list) else str(value).split(",")
        items = [str(c).strip() for c in items if str(c).strip()]
    else:
        items = parse_int_list(str(value), "--classes") if not isinstance(value, list) else value
        bad = [c for c in items if not isinstance(c, int) or not 0 <= c <= 9]
        if bad:
            raise UsageError(
                f"--classes: {bad[0]} is not an MNIST digit; use digits 0-9, e.g. 1,3,8"
            )
    if len(set(items)) < 2:
        what = "classes" if name == "folder" else "digits"
        raise UsageError(
            f"--classes needs at least two distinct {what} (a judge must tell them "
            "apart, and forgetting one must leave another)"
        )
    return tuple(sorted(set(items), key=str))


def model_options(s: dict, kind: str) -> dict:
    """The --arch, --latent-dim and --widths overrides of the model preset."""
    from unlearn_cli.errors import UsageError

    arch, widths = s.get("arch"), s.get("widths")
    if arch is not None and arch not in ARCHS[kind]:
        raise UsageError(f"--arch {arch!r}: a {kind} is one of {', '.join(ARCHS[kind])}")
    if isinstance(widths, (str, int)):
        widths = parse_int_list(str(widths), "--widths")
    if widths is not None and (not widths or not 1 <= min(widths) <= max(widths) <= MAX_WIDTH):
        raise UsageError(f"--widths: give layer widths from 1 to {MAX_WIDTH}, e.g. 32,64,128,256")
    latent_dim = s.get("latent_dim")
    if latent_dim is not None and not 1 <= latent_dim <= MAX_WIDTH:
        raise UsageError(f"--latent-dim must be from 1 to {MAX_WIDTH}, got {latent_dim}")
    if kind == "vae":
        return dict(arch=arch, latent_dim=latent_dim, hidden=widths)
    return dict(arch=arch, width=widths[0] if widths else None)


def default_out(kind: str, spec) -> Path:
    """`vae-mnist138`, `judge-celeba-Male`, `vae-photos` (a folder dataset by its folder's name)."""
    if spec.name == "folder" and spec.root:
        name = Path(spec.root).expanduser().resolve().name
    else:
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
    if s.get("attribute") and (kind == "vae" or name == "mnist"):
        raise UsageError(
            "--attribute names the attribute (CelebA, attributes.csv) a judge classifies; a "
            "VAE learns all of its data (forget an attribute with `unlearn forget`)"
        )
    if name == "celeba" and s.get("classes") is not None:
        raise UsageError("--classes selects MNIST digits; CelebA has attributes instead")
    if name == "folder" and not s.get("data_dir"):
        raise UsageError("--dataset folder needs --data-dir DIR (DIR/train/<class>/<image>)")
    if download and (name != "mnist" or not s.get("data_dir")):
        raise UsageError(
            "--download fetches MNIST into --data-dir; name the folder with "
            "--data-dir (the embedded MNIST needs no download)"
        )
    if s.get("exclude") and kind == "judge":
        raise UsageError("--exclude builds a retrain reference VAE; a judge must see every class")


def dataset_spec(s: dict, name: str, digits: tuple[int, ...] | None, requests: list) -> DatasetSpec:
    """The training data: the dataset, its folder, digits, size limit and exclusions."""
    from unlearn_cli.data.spec import DatasetSpec, folder_spec

    root = str(Path(s["data_dir"]).expanduser().resolve()) if s.get("data_dir") else None
    spec = DatasetSpec(
        name=name,
        root=root,
        classes=digits,
        attribute=s.get("attribute"),
        exclude=tuple(r.to_dict() for r in requests),
        limit=s.get("limit"),
        image_size=s.get("image_size") or 0,
    )
    return folder_spec(spec) if name == "folder" else spec
