"""A full disk during a write (ENOSPC, simulated) leaves the input and any existing output as they
were, no temporary file behind, and says so in one line."""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path

import pytest

from unlearn_cli.engine.files import atomic_write
from unlearn_cli.errors import EXIT_FAILURE, ResourceError
from unlearn_cli.workflows.ledger import append_receipts


def full_after(n: int):
    """A `Path.write_bytes` that writes `n` bytes, then finds the disk full."""

    def write_bytes(self: Path, data: bytes) -> int:
        with open(self, "wb") as f:
            f.write(data[:n])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    return write_bytes


def test_forget_onto_a_full_disk_keeps_input_and_output(cli, tiny_vae, tmp_path, monkeypatch):
    model, out = tmp_path / "m.safetensors", tmp_path / "out.safetensors"
    shutil.copy(tiny_vae, model)
    out.write_bytes(b"the previous output")
    before = model.read_bytes()
    monkeypatch.setattr(Path, "write_bytes", full_after(100))
    result = cli("forget", model, "--class", "1", "--method", "ascent", "--out", out)
    assert result.exit_code == EXIT_FAILURE
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "No space left on device" in lines[0]
    assert "nothing written" in lines[0] and "unexpected" not in lines[0]
    assert model.read_bytes() == before and out.read_bytes() == b"the previous output"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.safetensors", "out.safetensors"]


def test_atomic_write_onto_a_full_disk_leaves_no_temporary_file(tmp_path, monkeypatch):
    target = tmp_path / "report.md"
    monkeypatch.setattr(Path, "write_bytes", full_after(3))
    with pytest.raises(ResourceError, match="report.md"):
        atomic_write(target, lambda tmp: Path(tmp).write_bytes(b"0123456789"))
    assert list(tmp_path.iterdir()) == []


def test_a_receipt_cut_short_by_a_full_disk_leaves_the_ledger_as_it_was(tmp_path, monkeypatch):
    ledger = tmp_path / "L.jsonl"
    ledger.write_text(json.dumps({"request_id": "a"}) + "\n")
    before = ledger.read_bytes()

    def fsync(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(ResourceError, match="L.jsonl"):
        append_receipts(ledger, [{"request_id": "b" * 1000}])
    assert ledger.read_bytes() == before


@pytest.mark.parametrize("in_place", [True, False])
def test_a_ledger_that_cannot_be_written_leaves_no_unrecorded_checkpoint(
    cli, tiny_vae, tmp_path, monkeypatch, in_place
):
    """The checkpoint is written first (no receipt names a missing file); when the ledger then
    cannot be written, the output is put back: --in-place keeps its parent, a new --out is gone."""
    from unlearn_cli.workflows import forget as forget_module

    model, ledger = tmp_path / "m.safetensors", tmp_path / "L.jsonl"
    shutil.copy(tiny_vae, model)
    before = model.read_bytes()

    def full(path, receipts):
        raise ResourceError(f"cannot write {path}: No space left on device; nothing written")

    monkeypatch.setattr(forget_module, "append_receipts", full)
    where = ["--in-place"] if in_place else ["--out", tmp_path / "out.safetensors"]
    result = cli("forget", model, "--class", "1", "--method", "ascent", *where,
                 "--ledger", ledger)  # fmt: skip
    assert result.exit_code == EXIT_FAILURE and result.stderr.count("\n") == 1
    assert "L.jsonl" in result.stderr
    left = sorted(p.name for p in tmp_path.iterdir() if p.suffix != ".lock")  # the ledger's lock
    assert model.read_bytes() == before and left == ["m.safetensors"]
