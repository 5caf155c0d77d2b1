"""The requests `unlearn forget` is given: its selector flags (--class, --attribute, --indices,
--indices-file) and its manifests, read once into `Request`s."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from unlearn_cli.cli.output import parse_int_list

if TYPE_CHECKING:
    from unlearn_cli.data.requests import Request

IdT = TypeVar("IdT", int, str)  # a sample's index, or a file's name or path


def identity_request(kind: str, values: list[IdT]) -> Request:
    """One request for these identities; its id is a digest of their set, so a rerun is a no-op."""
    from unlearn_cli.data.requests import Request

    digest = hashlib.sha256(",".join(map(str, sorted(set(values)))).encode()).hexdigest()
    return Request(f"cli-{kind}-{digest[:12]}", kind, tuple(values))


def flag_requests(
    classes: list[str], attributes: list[str], indices: str | None, indices_file: Path | None
) -> list[Request]:
    """Requests from the selector flags; their ids are stable, so a rerun is a no-op. A class
    is a digit (MNIST, or a class folder named by one) or a class folder's name."""
    from unlearn_cli.data.requests import MAX_INDEX, Request, class_value, read_indices_file
    from unlearn_cli.errors import UsageError

    named = [class_value(c) for c in classes]
    requests = [Request(f"cli-class-{c}", "class", (c,)) for c in named]
    requests += [Request(f"cli-attribute-{a}", "attribute", (a,)) for a in attributes]
    picked = []
    if indices is not None:
        picked += [str(i) for i in parse_int_list(indices, "--indices")]
    if indices_file is not None:
        picked += [str(v) for v in read_indices_file(indices_file)]
    for bad in (p for p in picked if p.startswith("-")):
        raise UsageError(f"--indices: {bad} is negative; indices start at 0")
    numbers = [int(p) for p in picked if p.isdigit()]
    for n in (n for n in numbers if n > MAX_INDEX):
        raise UsageError(f"--indices: {n} is past the largest index, {MAX_INDEX}")
    files = [p for p in picked if not p.isdigit()]
    if numbers:
        requests.append(identity_request("indices", numbers))
    if files:
        requests.append(identity_request("files", files))
    return requests


def all_requests(
    classes: list[str],
    attributes: list[str],
    indices: str | None,
    indices_file: Path | None,
    manifests: list[Path],
) -> list[Request]:
    """The requests of the selector flags, then those of the manifests; none named twice."""
    from unlearn_cli.data.requests import load_manifests
    from unlearn_cli.errors import UsageError

    requests = flag_requests(classes, attributes, indices, indices_file)
    requests += load_manifests(manifests)
    if not requests:
        raise UsageError(
            "nothing to forget: give --class, --attribute, --indices, --indices-file or --manifest"
        )
    ids = [r.id for r in requests]
    if len(ids) != len(set(ids)):
        raise UsageError("the same request is named twice (a flag repeats a manifest entry?)")
    return requests
