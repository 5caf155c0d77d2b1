"""What a checkpoint says about itself, read from its metadata alone (no weights are loaded)."""

from __future__ import annotations

from pathlib import Path

from unlearn_cli.data.requests import Request
from unlearn_cli.data.spec import DatasetSpec
from unlearn_cli.engine.checkpoint import read_metadata, tensor_problems
from unlearn_cli.engine.files import file_sha256
from unlearn_cli.errors import CheckpointError


def lineage_of(meta: dict, where: str) -> list[dict]:
    """The lineage, each entry checked for what an audit relies on; a corrupt one is a
    CheckpointError."""
    lineage = meta.get("lineage", [])
    if not isinstance(lineage, list):
        raise CheckpointError(f"{where}: corrupt lineage (not a list)")
    for n, entry in enumerate(lineage, start=1):
        ok = (
            isinstance(entry, dict)
            and isinstance(entry.get("requests"), list)
            and isinstance(entry.get("parent_sha256"), str)
            and all(isinstance(r, dict) and "id" in r for r in entry["requests"])
        )
        if not ok:
            raise CheckpointError(
                f"{where}: corrupt lineage entry {n} (needs requests with ids and a parent_sha256)"
            )
    return lineage


def describe_checkpoint(path: Path) -> dict:
    """One JSON-ready document: what the file is, what it was trained on, every operation in
    its lineage with the requests it honoured, and what is wrong with its tensors (`problems`:
    a NaN weight, a file cut short), which the other commands refuse."""
    meta = read_metadata(path)
    try:
        spec = DatasetSpec.from_dict(meta["dataset"])
        operations = [
            {
                **entry,
                "number": n,  # 1 for the first forget
                "requests": [
                    {**r, "selector": Request.from_dict(r).describe()} for r in entry["requests"]
                ],
            }
            for n, entry in enumerate(lineage_of(meta, str(path)), start=1)
        ]
    except (KeyError, TypeError, ValueError, StopIteration) as e:
        raise CheckpointError(f"{path}: corrupt metadata ({type(e).__name__}: {e})") from None
    return {
        "checkpoint": str(path),
        "sha256": file_sha256(path),
        "size_bytes": path.stat().st_size,
        "kind": meta.get("kind"),
        "tool_version": meta.get("tool_version"),
        "created": meta.get("created"),
        "model_config": meta.get("model_config"),
        "dataset": spec.describe(),
        "dataset_spec": meta["dataset"],
        "excluded_requests": [r["id"] for r in spec.exclude],
        "num_samples": meta.get("num_samples"),
        "train_ids_sha256": meta.get("train_ids_sha256"),
        "training": meta.get("training"),
        "train_seconds": meta.get("train_seconds"),
        "metrics": meta.get("metrics", {}),
        "lineage": operations,
        "original_sha256": operations[0]["parent_sha256"] if operations else None,
        "problems": tensor_problems(path),
    }
