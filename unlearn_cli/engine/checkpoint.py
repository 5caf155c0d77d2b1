"""Self-describing checkpoints: weights in safetensors, everything else as JSON metadata.

Metadata keys (every value a JSON string, as safetensors requires strings):

    format         "unlearn/1"
    kind           "vae" or "judge"
    model_config   the model's config dataclass
    dataset        the DatasetSpec it was trained on
    training       epochs, batch size, lr, seed, device
    train_ids_sha256, num_samples   fingerprint and size of the training set
    train_seconds  wall time of training
    lineage        a list with one entry per forget operation, oldest first
    metrics        e.g. a judge's held-out accuracy
    tool_version, created

Files are byte-reproducible: metadata keys and JSON values are written in sorted order, and with
SOURCE_DATE_EPOCH set (the reproducible-builds convention) timestamps come from it and measured
durations are recorded as 0, so the same command on the same inputs writes the same bytes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from unlearn_cli import __version__
from unlearn_cli.data.requests import Request
from unlearn_cli.data.spec import DatasetSpec
from unlearn_cli.engine.files import atomic_write, file_sha256, timestamp
from unlearn_cli.engine.files import check_not_input as check_not_input  # re-exported for
from unlearn_cli.engine.files import check_writable as check_writable  # the commands' imports
from unlearn_cli.errors import CheckpointError

FORMAT = "unlearn/1"
KINDS = ("vae", "judge")


@dataclass
class Checkpoint:
    kind: str
    model: nn.Module
    model_config: dict
    dataset: DatasetSpec
    training: dict
    train_ids_sha256: str = ""
    num_samples: int = 0
    train_seconds: float = 0.0
    lineage: list[dict] = field(default_factory=list)
    metrics: dict = field(default_factory=dict)
    tool_version: str = __version__
    created: str = ""
    path: Path | None = None  # where it was loaded from
    sha256: str | None = None  # of the file it was loaded from

    def metadata(self) -> dict[str, str]:
        values = {
            "format": FORMAT,
            "kind": self.kind,
            "model_config": self.model_config,
            "dataset": self.dataset.to_dict(),
            "training": self.training,
            "train_ids_sha256": self.train_ids_sha256,
            "num_samples": self.num_samples,
            "train_seconds": self.train_seconds,
            "lineage": self.lineage,
            "metrics": self.metrics,
            "tool_version": self.tool_version,
            "created": self.created or timestamp(),
        }
        return {k: json.dumps(v, sort_keys=True) for k, v in values.items()}

    def forgotten_requests(self) -> list[Request]:
        """Every request forgotten so far, from the lineage, oldest first."""
        try:
            requests = [Request.from_dict(r) for entry in self.lineage for r in entry["requests"]]
        except (KeyError, TypeError, ValueError) as e:
            raise self._corrupt("a forget operation in its lineage", e) from None
        named = [r for r in requests if r.selector == "class" and self.dataset.name == "mnist"]
        for v in (v for r in named for v in r.values if not isinstance(v, int)):
            raise self._corrupt(
                "a forget operation in its lineage", ValueError(f"{v!r} is not a digit")
            )
        return requests

    def excluded_requests(self) -> list[Request]:
        """The requests its training set was made without (a retrain reference's)."""
        try:
            return [Request.from_dict(r) for r in self.dataset.exclude]
        except ValueError as e:
            raise self._corrupt("the dataset's exclusions", e) from None

    def _corrupt(self, where: str, e: Exception) -> CheckpointError:
        return CheckpointError(
            f"{self.path}: {where} is malformed ({type(e).__name__}: {e}); the file was edited "
            "or is corrupt"
        )


def canonical_bytes(state: dict[str, torch.Tensor], metadata: dict[str, str]) -> bytes:
    """safetensors bytes with the header's metadata in sorted key order.

    safetensors keeps metadata in a hash map, so its own writer orders the keys differently from
    one process to the next; the tensors it lays out in a fixed order."""
    from safetensors.torch import save

    raw = save(state, metadata=metadata)
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + n])
    header["__metadata__"] = dict(sorted(header.get("__metadata__", {}).items()))
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the data starts 8-byte aligned, as safetensors pads it
    return len(text).to_bytes(8, "little") + text + raw[8 + n :]


def save_checkpoint(ckpt: Checkpoint, path: str | Path, overwrite: bool = True) -> Path:
    """Write `ckpt` atomically; with `overwrite=False`, refuse a file that appeared meanwhile."""
    path = Path(path)
    state = {k: v.detach().cpu().contiguous() for k, v in ckpt.model.state_dict().items()}
    data = canonical_bytes(state, ckpt.metadata())
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(data), overwrite=overwrite)
    return path


def first_not_finite(state: dict[str, torch.Tensor]) -> str | None:
    """The name of the first tensor (in name order) holding a NaN or an infinity, or None."""
    return next(
        (
            k
            for k in sorted(state)
            if state[k].is_floating_point() and not state[k].isfinite().all()
        ),
        None,
    )


def tensor_problems(path: str | Path) -> list[str]:
    """What is wrong with a checkpoint's tensors, read one at a time (for `inspect`, which
    shows a bad file rather than refusing it); [] when every tensor is readable and finite."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            bad = [k for k in sorted(f.keys()) if first_not_finite({k: f.get_tensor(k)})]
    except Exception as e:  # safetensors' own error type, for a file cut short
        return [f"cannot read its tensors ({str(e).splitlines()[0] if str(e) else e!r})"]
    return [f"tensor {k} holds NaN or infinite values" for k in bad]


def _build(kind: str, config: dict) -> nn.Module:
    from unlearn_cli.models import VAE, JudgeConfig, VAEConfig, build_judge

    if kind == "vae":
        return VAE.from_config(VAEConfig(**config))
    return build_judge(JudgeConfig(**config))


def read_metadata(path: str | Path) -> dict:
    """The decoded metadata of a checkpoint file, without loading weights."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    try:
        with safe_open(str(path), framework="pt") as f:
            raw = f.metadata() or {}
    except Exception as e:  # safetensors raises its own error type for every kind of bad file
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise CheckpointError(
            f"{path}: not a readable safetensors checkpoint ({reason}); it may be truncated or "
            "another format"
        ) from None
    if raw.get("format") != json.dumps(FORMAT):
        raise CheckpointError(
            f"{path}: a safetensors file, but not an unlearn checkpoint (no format={FORMAT} "
            "metadata); make one with `unlearn train`"
        )
    try:
        return {k: json.loads(v) for k, v in raw.items()}
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path}: corrupt metadata ({e})") from None


def load_checkpoint(
    path: str | Path, kind: str | None = None, device: torch.device | str = "cpu"
) -> Checkpoint:
    """Load and validate a checkpoint; `kind` ("vae" or "judge") is the kind the caller needs."""
    from safetensors.torch import load_file

    path = Path(path)
    meta = read_metadata(path)
    absent = [k for k in ("kind", "model_config", "dataset") if k not in meta]
    if absent:
        raise CheckpointError(f"{path}: incomplete metadata, no {', '.join(absent)}")
    if meta["kind"] not in KINDS:
        raise CheckpointError(f"{path}: unknown checkpoint kind {meta['kind']!r}")
    if kind is not None and meta["kind"] != kind:
        hint = "a generator (VAE)" if kind == "vae" else "a judge classifier"
        raise CheckpointError(f"{path}: is a {meta['kind']} checkpoint, but {hint} is needed here")
    try:
        model = _build(meta["kind"], meta["model_config"])
        spec = DatasetSpec.from_dict(meta["dataset"])
    except (TypeError, ValueError, KeyError) as e:
        raise CheckpointError(
            f"{path}: invalid model or dataset config in metadata ({e})"
        ) from None
    try:
        state = load_file(str(path))
    except Exception as e:
        raise CheckpointError(
            f"{path}: cannot read tensors ({e}); the file may be truncated"
        ) from None
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [k for k in expected if k in state and state[k].shape != expected[k].shape]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing[:3])}")
        if unexpected:
            parts.append(f"unexpected {', '.join(unexpected[:3])}")
        if wrong:
            parts.append(f"wrong shape for {', '.join(wrong[:3])}")
        raise CheckpointError(f"{path}: weights do not match its model config ({'; '.join(parts)})")
    bad = first_not_finite(state)
    if bad is not None:
        raise CheckpointError(
            f"{path}: tensor {bad} holds NaN or infinite values; the file is corrupt or its "
            "training diverged (use the checkpoint it was made from, or retrain it)"
        )
    model.load_state_dict(state, strict=True)
    model.to(device).eval()
    ckpt = Checkpoint(
        kind=meta["kind"],
        model=model,
        model_config=meta["model_config"],
        dataset=spec,
        training=meta.get("training", {}),
        train_ids_sha256=meta.get("train_ids_sha256", ""),
        num_samples=meta.get("num_samples", 0),
        train_seconds=meta.get("train_seconds", 0.0),
        lineage=meta.get("lineage", []),
        metrics=meta.get("metrics", {}),
        tool_version=meta.get("tool_version", ""),
        created=meta.get("created", ""),
        path=path,
        sha256=file_sha256(path),
    )
    if not isinstance(ckpt.lineage, list) or not all(isinstance(e, dict) for e in ckpt.lineage):
        raise CheckpointError(f"{path}: corrupt metadata (the lineage is not a list of entries)")
    ckpt.excluded_requests(), ckpt.forgotten_requests()  # a corrupt request fails here, as exit 2
    return ckpt
