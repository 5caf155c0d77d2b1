"""Audit a ledger: check every receipt against the checkpoint it names.

Three checks per receipt:

    sha256   the file exists and its sha256 is the receipt's child_sha256
    request  the operation that wrote the file (the last of its lineage) holds the request and
             was made from the receipt's parent
    chain    every earlier operation's output is vouched for, by a receipt of this ledger or by a
             checkpoint given to the audit, back to the original the first operation started
             from (which must be the original given, when one is)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path

from unlearn_cli.engine.checkpoint import read_metadata
from unlearn_cli.engine.files import file_sha256
from unlearn_cli.errors import CheckpointError
from unlearn_cli.workflows.inspect import lineage_of
from unlearn_cli.workflows.ledger import Receipt, read_ledger


@dataclass(frozen=True)
class Mismatch:
    line: int | None  # the receipt's line in the ledger; None for a checkpoint without receipt
    request_id: str
    checkpoint: str
    check: str  # sha256, request, chain or receipt
    problem: str


@dataclass
class AuditReport:
    ledger: str
    receipts: int  # receipts checked
    checkpoints: list[str]  # files examined
    mismatches: list[Mismatch] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatches

    def to_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok}


@dataclass(frozen=True)
class _File:
    """A checkpoint file as the audit sees it."""

    path: Path
    sha256: str
    lineage: list[dict] | None  # None: not a readable checkpoint

    @cached_property
    def last_ids(self) -> frozenset[str]:
        """Ids of the requests of the operation that wrote the file."""
        return (
            frozenset(q["id"] for q in self.lineage[-1]["requests"])
            if self.lineage
            else frozenset()
        )


def _read(path: Path, strict: bool = False) -> _File:
    """A file's sha256 and lineage; unless `strict`, a file that is no checkpoint has None."""
    try:
        return _File(path, file_sha256(path), lineage_of(read_metadata(path), str(path)))
    except CheckpointError:
        if strict:
            raise
        return _File(path, file_sha256(path), None)


def _same(a: Path, b: Path) -> bool:
    return a.exists() and b.exists() and a.samefile(b)


def audit_ledger(ledger: Path, checkpoints: list[Path]) -> AuditReport:
    """Check the receipts of `ledger`: all of them against the files they name, or, with
    `checkpoints`, those of these files (found by sha256, so moved files are found too)."""
    receipts = read_ledger(ledger)
    given = [_read(p, strict=True) for p in checkpoints]  # a bad one is bad input
    by_child: dict[str, list[Receipt]] = {}
    for r in receipts:
        by_child.setdefault(r.child_sha256, []).append(r)
    report = AuditReport(str(ledger), 0, [str(f.path) for f in given])
    seen: dict[Path, _File] = {}
    chained: dict[str, str | None] = {}  # file sha256 -> its chain problem
    for r in receipts:
        file = _file_of(r, given, seen)
        if file is None:
            if not given:
                report.receipts += 1
                report.mismatches.append(
                    Mismatch(r.line, r.request_id, r.checkpoint, "sha256", "file not found")
                )
            continue
        report.receipts += 1
        for check, problem in _check(r, file, by_child, given, chained):
            report.mismatches.append(Mismatch(r.line, r.request_id, str(file.path), check, problem))
    for f in given:
        named = any(
            r.child_sha256 == f.sha256 or _same(Path(r.checkpoint), f.path) for r in receipts
        )
        if f.lineage and not named:
            report.mismatches.append(
                Mismatch(None, "-", str(f.path), "receipt", f"no receipt in {ledger} names it")
            )
    return report


def _file_of(r: Receipt, given: list[_File], seen: dict[Path, _File]) -> _File | None:
    """The file a receipt is checked against: a given checkpoint (by sha256, then by path), or
    without any given, the file at the receipt's path."""
    if given:
        return next((f for f in given if f.sha256 == r.child_sha256), None) or next(
            (f for f in given if _same(Path(r.checkpoint), f.path)), None
        )
    path = Path(r.checkpoint)
    if not path.is_file():
        return None
    if path not in seen:
        seen[path] = _read(path)
    return seen[path]


def _check(r: Receipt, file: _File, by_child, given, chained) -> list[tuple[str, str]]:
    if file.sha256 != r.child_sha256:
        return [
            ("sha256", f"file is {file.sha256[:12]}, receipt says {r.child_sha256[:12]}: changed")
        ]
    if file.lineage is None:
        return [("request", "not a readable unlearn checkpoint")]
    if not file.lineage:
        return [("request", "its lineage is empty: it forgot nothing")]
    last = file.lineage[-1]
    if r.request_id not in file.last_ids:
        return [("request", "the operation that wrote the file does not hold the request")]
    problems = []
    if last["parent_sha256"] != r.parent_sha256:
        problems.append(
            (
                "request",
                f"made from {last['parent_sha256'][:12]}, receipt says {r.parent_sha256[:12]}",
            )
        )
    if file.sha256 not in chained:
        chained[file.sha256] = _chain_problem(file.lineage, by_child, given)
    chain = chained[file.sha256]
    if chain:
        problems.append(("chain", chain))
    return problems


def _chain_problem(lineage: list[dict], by_child, given: list[_File]) -> str | None:
    """Why the lineage does not chain back to the original, or None when it does."""
    for k in range(len(lineage) - 1, 0, -1):
        link, before = lineage[k]["parent_sha256"], lineage[k - 1]
        ids = {q["id"] for q in before["requests"]}
        vouched = any(
            r.request_id in ids and r.parent_sha256 == before["parent_sha256"]
            for r in by_child.get(link, [])
        ) or any(f.sha256 == link and f.lineage == lineage[:k] for f in given)
        if not vouched:
            return (
                f"operation {k + 1} was made from {link[:12]}, which no receipt or given "
                f"checkpoint vouches for as the output of operation {k}"
            )
    root = lineage[0]["parent_sha256"]
    originals = [f.sha256 for f in given if f.lineage == []]
    if originals and root not in originals:
        return f"chains back to {root[:12]}, not to the original given ({originals[0][:12]})"
    return None
