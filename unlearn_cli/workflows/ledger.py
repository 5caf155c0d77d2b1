"""The ledger: a JSON-lines file of receipts, one per deletion request honoured.

Writers append under an exclusive lock (`LEDGER.lock` beside it, a `filelock` lock that the
operating system drops when its process dies, so a killed writer never blocks the next one).
The lock also covers writing the checkpoint the receipts name, so receipts and checkpoints of
concurrent forgets appear in the same order.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from unlearn_cli.engine.files import write_failed
from unlearn_cli.errors import DataError, OutputError

LOCK_TIMEOUT = 300  # seconds to wait for another writer; one holds the lock for milliseconds
REQUIRED = ("request_id", "parent_sha256", "child_sha256", "checkpoint")


@contextlib.contextmanager
def ledger_lock(path: Path | None) -> Iterator[None]:
    """Hold the ledger's lock (a no-op without a ledger)."""
    if path is None:
        yield
        return
    from filelock import FileLock, Timeout

    lock = FileLock(f"{path}.lock", timeout=LOCK_TIMEOUT)
    try:
        lock.acquire()
    except Timeout:
        raise OutputError(
            f"ledger {path} stayed locked by another process for {LOCK_TIMEOUT} s; "
            "nothing written, rerun when it is done"
        ) from None
    try:
        yield
    finally:
        lock.release()


def append_receipts(path: Path, receipts: list[dict]) -> None:
    """Append one JSON line per receipt in a single write; call it holding `ledger_lock(path)`."""
    text = "".join(json.dumps(r, allow_nan=False) + "\n" for r in receipts)
    with open(path, "a+b") as f:
        size = f.seek(0, os.SEEK_END)
        if size > 0:
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b"\n":  # a line cut short by a crash stays alone on its line
                text = "\n" + text
        try:
            f.write(text.encode())
            f.flush()
            os.fsync(f.fileno())
        except OSError as e:  # a full disk: no receipt cut short, the ledger as it was
            f.truncate(size)
            raise write_failed(path, e) from None


@dataclass(frozen=True)
class Receipt:
    """One ledger line, with where it came from."""

    line: int
    request_id: str
    parent_sha256: str
    child_sha256: str
    checkpoint: str
    fields: dict  # the whole line, for what an auditor may want to show

    @classmethod
    def parse(cls, text: str, line: int, where: str) -> Receipt:
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise DataError(f"{where}:{line}: not a JSON receipt ({e.msg})") from None
        if not isinstance(d, dict):
            raise DataError(f"{where}:{line}: not a JSON receipt (expected an object)")
        missing = [k for k in REQUIRED if not isinstance(d.get(k), str)]
        if missing:
            raise DataError(f"{where}:{line}: receipt without {', '.join(missing)}")
        return cls(line, d["request_id"], d["parent_sha256"], d["child_sha256"], d["checkpoint"], d)


def read_ledger(path: Path) -> list[Receipt]:
    """Every receipt in the ledger; a line that is not one is bad input (DataError)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise DataError(f"ledger {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"ledger {path}: cannot read it ({e})") from None
    receipts = [
        Receipt.parse(line, n, str(path))
        for n, line in enumerate(text.splitlines(), start=1)
        if line.strip()
    ]
    if not receipts:
        raise DataError(f"ledger {path} holds no receipts")
    return receipts
