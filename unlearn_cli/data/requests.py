"""Deletion requests: what to forget, from flags or a YAML manifest, resolved to identities.

A manifest is a batch of requests; each has an `id` and exactly one selector:

    requests:
      - id: gdpr-2026-0142
        class: 1                 # MNIST digit(s), or a folder's class name(s)
        received: 2026-11-02     # optional
        note: all ones           # optional
      - id: gdpr-2026-0143
        indices: [12, 40, 77]    # training-sample identities (index in the training split)
      - id: gdpr-2026-0144
        files: [000123.jpg]      # CelebA file names, or paths relative to a folder dataset
      - id: gdpr-2026-0145
        attribute: Male          # CelebA or attributes.csv: every sample with it set
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import torch

from unlearn_cli.config import ConfigError, as_text, is_int, load_yaml, type_name
from unlearn_cli.data.spec import DatasetSpec
from unlearn_cli.errors import DataError

SELECTORS = ("class", "attribute", "indices", "files")
MAX_INDEX = 2**63 - 1  # identities are 64-bit integers
RANGES = {"indices": MAX_INDEX}  # the largest value of each numeric selector
OPTIONAL = ("received", "note")


@dataclass(frozen=True)
class Request:
    """One deletion request with one selector."""

    id: str
    selector: str  # one of SELECTORS
    values: tuple  # ints for indices, ints or names for class, strings for attribute and files
    received: str | None = None
    note: str | None = None

    def to_dict(self) -> dict:
        d = {"id": self.id, self.selector: list(self.values)}
        d.update({k: v for k in OPTIONAL if (v := getattr(self, k)) is not None})
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Request:
        """The request `to_dict` wrote (into a lineage, a dataset's exclusions); ValueError
        saying what is wrong when `d` is not one."""
        if not isinstance(d, dict) or not isinstance(d.get("id"), (str, int)):
            raise ValueError(f"not a request with an id: {d!r}")
        chosen = [k for k in SELECTORS if k in d]
        if len(chosen) != 1:
            raise ValueError(f"request {d['id']!r} has {len(chosen)} selectors, not one")
        problems: list[str] = []
        values = _values(chosen[0], d[chosen[0]], f"request {d['id']!r}", problems)
        if problems:
            raise ValueError(problems[0])
        return cls(str(d["id"]), chosen[0], values, d.get("received"), d.get("note"))

    def describe(self) -> str:
        shown = ",".join(map(str, self.values[:5])) + ("..." if len(self.values) > 5 else "")
        return f"{self.selector} {shown}"


def _values(selector: str, raw, where: str, problems: list[str]) -> tuple:
    items = raw if isinstance(raw, list) else [raw]
    if not items:
        problems.append(f"{where}.{selector}: empty; name at least one")
        return ()
    if selector == "class":  # an MNIST digit or a class folder's name (checked on resolving)
        bad = [v for v in items if not (is_int(v) and v >= 0) and not (isinstance(v, str) and v)]
        if bad:
            shown = repr(bad[0]) if len(repr(bad[0])) <= 40 else f"{repr(bad[0])[:37]}..."
            problems.append(
                f"{where}.class: {shown} is neither a digit nor a class name ({type_name(bad[0])})"
            )
            return ()
        return tuple(items)
    if selector == "indices":
        top = RANGES[selector]
        bad = [v for v in items if not is_int(v) or not 0 <= v <= top]
        if bad:
            shown = repr(bad[0]) if len(repr(bad[0])) <= 40 else f"{repr(bad[0])[:37]}..."
            problems.append(
                f"{where}.{selector}: {shown} is not a whole number from 0 to {top} "
                f"({type_name(bad[0])})"
            )
            return ()
        return tuple(items)
    bad = [v for v in items if not isinstance(v, str) or not v]
    if bad:
        problems.append(f"{where}.{selector}: expected names, got {type_name(bad[0])} {bad[0]!r}")
        return ()
    return tuple(items)


def parse_requests(data, source: str) -> list[Request]:
    """Requests from parsed YAML; every problem in the file is reported in one ConfigError."""
    problems: list[str] = []
    if not isinstance(data, dict) or set(data) - {"requests"}:
        keys = sorted(set(data) - {"requests"}) if isinstance(data, dict) else []
        extra = f" (unknown keys: {', '.join(map(str, keys))})" if keys else ""
        raise ConfigError(source, [f"expected a mapping with one key, `requests:`{extra}"])
    items = data.get("requests")
    if not isinstance(items, list) or not items:
        raise ConfigError(source, ["`requests:` must be a non-empty list of requests"])
    out, seen = [], set()
    for n, item in enumerate(items, start=1):
        where = f"request {n}"
        if not isinstance(item, dict):
            problems.append(f"{where}: expected a mapping, got {type_name(item)}")
            continue
        if "id" in item and isinstance(item["id"], (str, int)) and not isinstance(item["id"], bool):
            where = f"request {item['id']!r}"
        else:
            problems.append(f"{where}: needs an `id` (a string)")
        unknown = [k for k in item if k not in ("id", *SELECTORS, *OPTIONAL)]
        for k in unknown:
            problems.append(
                f"{where}: unknown key {k!r} (known: id, {', '.join(SELECTORS)}, "
                f"{', '.join(OPTIONAL)})"
            )
        chosen = [k for k in SELECTORS if k in item]
        if len(chosen) != 1:
            problems.append(
                f"{where}: needs exactly one of {', '.join(SELECTORS)}, found {len(chosen)}"
            )
            continue
        values = _values(chosen[0], item[chosen[0]], where, problems)
        rid = str(item.get("id"))
        if rid in seen:
            problems.append(f"{where}: duplicate id")
        seen.add(rid)
        note = item.get("note")
        if note is not None and not isinstance(note, str):
            problems.append(f"{where}.note: expected a string, got {type_name(note)}")
        out.append(Request(rid, chosen[0], values, as_text(item.get("received")), note))
    if problems:
        raise ConfigError(source, problems)
    return out


def load_manifest(path: str | Path) -> list[Request]:
    return parse_requests(load_yaml(path), str(path))


def load_manifests(paths: list[Path]) -> list[Request]:
    """The requests of several manifests, in order; an id in two of them is a ConfigError."""
    out: list[Request] = []
    first: dict[str, Path] = {}
    for path in paths:
        requests = load_manifest(path)
        clashes = [r.id for r in requests if r.id in first]
        if clashes:
            raise ConfigError(
                str(path),
                [f"request {clashes[0]!r} is also in {first[clashes[0]]}; ids must be unique"],
            )
        first.update((r.id, path) for r in requests)
        out += requests
    return out


IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def read_indices_file(path: str | Path) -> list[int | str]:
    """Identities from a text file: integers, CelebA file names or paths relative to a folder
    dataset, split by whitespace or commas; `#` starts a comment. A line that does not split
    into identities but ends in an image name is one path with spaces in it."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise DataError(f"cannot read {path}: {e.strerror}", "indices_file") from None
    out: list[int | str] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        content = line.split("#", 1)[0].strip()
        tokens = content.replace(",", " ").split()
        bad = [t for t in tokens if not (is_index(t) or t.lower().endswith(IMAGE_SUFFIXES))]
        if bad and content.lower().endswith(IMAGE_SUFFIXES) and "," not in content:
            out.append(content)
            continue
        if bad:
            raise DataError(
                f"{path}:{lineno}: {bad[0]!r} is neither an index nor an image file name"
            )
        for token in tokens:
            if not is_index(token):
                out.append(token)
            elif token.startswith("-"):
                raise DataError(f"{path}:{lineno}: {token} is negative; indices start at 0")
            else:
                out.append(int(token))
    if not out:
        raise DataError(f"{path} names no samples", "indices_file")
    return out


def is_index(token: str) -> bool:
    """An integer, negative ones included (refused with their own reason)."""
    return token.lstrip("-").isdigit()


def resolve(request: Request, data, spec: DatasetSpec, missing_ok: bool = False) -> torch.Tensor:
    """Sorted identities of the samples in `data` that `request` selects. `missing_ok`: files
    no longer in the data select nothing (requests honoured before their files were removed)."""
    if request.selector == "class":
        return _resolve_class(request, data, spec)
    if request.selector == "attribute":
        if spec.name == "mnist":
            raise DataError(
                f"request {request.id}: {spec.name} has no attributes; select digits with `class`"
            )
        mask = torch.zeros(len(data), dtype=torch.bool)
        for name in request.values:
            mask |= data.labels[:, data.attribute_index(name)].bool()
        return data.ids[mask].sort().values
    if request.selector == "files":
        if spec.name == "mnist":
            raise DataError(
                f"request {request.id}: file names select CelebA or folder samples; on "
                f"{spec.name} use indices"
            )
        try:
            found = data.ids_of_files(list(request.values), missing_ok=missing_ok)
        except DataError as e:
            raise DataError(f"request {request.id}: {e}") from None
        return found.unique().sort().values
    if spec.name == "folder":
        raise DataError(
            f"request {request.id}: a folder's samples are named by their paths relative to "
            "it (e.g. train/cat/001.png), stable when files are added; name them in an "
            "indices file or a manifest's `files:`"
        )
    wanted = torch.tensor(request.values, dtype=torch.long).unique()
    missing = wanted[~torch.isin(wanted, data.ids)]
    if len(missing):
        raise DataError(
            f"request {request.id}: index {int(missing[0])} is not a sample of this model's "
            f"training set ({spec.describe()}, {len(data)} samples)"
        )
    return wanted


def class_value(text: str) -> int | str:
    """A class as typed: a number written plainly ("7", "12") is a digit or a class folder of
    that name; anything else ("07", "cat") a name, so a folder's own spelling still matches."""
    return int(text) if text.isdigit() and str(int(text)) == text else text


def _resolve_class(request: Request, data, spec: DatasetSpec) -> torch.Tensor:
    if spec.name == "celeba":
        raise DataError(f"request {request.id}: CelebA has no classes; use `attribute`")
    if spec.name == "folder":
        columns = [data.class_index(str(c)) for c in request.values]
        mask = data.labels[:, columns].bool().any(1)
        return data.ids[mask].sort().values
    known = spec.digits
    for c in request.values:
        if c not in known:
            raise DataError(
                f"request {request.id}: class {c} is not one the model was trained on "
                f"(its classes: {','.join(map(str, known))})"
            )
    mask = torch.isin(data.labels, torch.tensor(request.values))
    return data.ids[mask].sort().values


def resolve_all(
    requests: list[Request], data, spec: DatasetSpec, missing_ok: bool = False
) -> dict[str, torch.Tensor]:
    """request id -> sorted identities it selects. Index requests are checked in one pass over
    the data, so 10,000 of them cost about what one does."""
    by_indices = [r for r in requests if r.selector == "indices"]
    found = _resolve_indices(by_indices, data, spec) if by_indices and spec.name != "folder" else {}
    return {
        r.id: found[r.id] if r.id in found else resolve(r, data, spec, missing_ok) for r in requests
    }


def _resolve_indices(requests: list[Request], data, spec: DatasetSpec) -> dict[str, torch.Tensor]:
    lengths = [len(r.values) for r in requests]
    wanted = torch.tensor([v for r in requests for v in r.values], dtype=torch.long)  # (V,)
    known = torch.isin(wanted, data.ids)  # (V,)
    if not known.all():
        first = int((~known).nonzero()[0])
        owner = int(torch.searchsorted(torch.tensor(lengths).cumsum(0), first, right=True))
        raise DataError(
            f"request {requests[owner].id}: index {int(wanted[first])} is not a sample of this "
            f"model's training set ({spec.describe()}, {len(data)} samples)"
        )
    return {r.id: part.unique() for r, part in zip(requests, wanted.split(lengths))}


def count_in(groups: list[torch.Tensor], pool: torch.Tensor) -> list[int]:
    """How many identities of each group are in `pool`, in one pass."""
    if not groups:
        return []
    owner = torch.repeat_interleave(torch.arange(len(groups)), torch.tensor(list(map(len, groups))))
    hit = torch.isin(torch.cat(groups), pool)  # (sum of group sizes,)
    return torch.bincount(owner[hit], minlength=len(groups)).tolist()


def union(ids: list[torch.Tensor]) -> torch.Tensor:
    if not ids:
        return torch.zeros(0, dtype=torch.long)
    return torch.cat(ids).unique().sort().values


def ids_sha256(ids: torch.Tensor) -> str:
    """A fingerprint of a set of identities: sha256 of the sorted ids as comma-joined text."""
    text = ",".join(str(i) for i in ids.sort().values.tolist())
    return hashlib.sha256(text.encode()).hexdigest()


def training_set(spec: DatasetSpec, root: str | None = None):
    """The samples a model with this spec was trained on: the split minus its exclusions."""
    from unlearn_cli.data.images import split_by_ids
    from unlearn_cli.data.spec import load_split

    data = load_split(spec, root=root)
    if not spec.exclude:
        return data
    requests = [Request.from_dict(r) for r in spec.exclude]  # files since removed: left out anyway
    excluded = union([resolve(r, data, spec, missing_ok=True) for r in requests])
    return split_by_ids(data, excluded)[1]
