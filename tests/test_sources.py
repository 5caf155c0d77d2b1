"""The digest of the code a forget runs (`engine.sources`): it moves with that code and with
nothing else."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from unlearn_cli.engine import sources

REDIRECT, RETRAIN, SURGERY = (
    f"unlearn_cli.methods.{m}" for m in ("redirect", "retrain", "surgery")
)


def digests() -> dict[str, str]:
    sources.code_digest.cache_clear()
    return {m: sources.code_digest(m) for m in (REDIRECT, RETRAIN, SURGERY)}


@pytest.fixture
def edit(monkeypatch):
    """Pretend the package file at `relative` has one more line, for this test only."""
    real = Path.read_bytes

    def edit(relative: str) -> None:
        target = sources.PACKAGE / relative

        def read_bytes(path: Path) -> bytes:
            body = real(path)
            return body + b"# edited\n" if path == target else body

        monkeypatch.setattr(Path, "read_bytes", read_bytes)

    yield edit
    monkeypatch.undo()
    sources.code_digest.cache_clear()
    sources.training_digest.cache_clear()


def test_an_edit_of_a_method_moves_its_digest_and_no_other(edit):
    before = digests()
    assert len(set(before.values())) == 3  # each method its own code
    edit("methods/membership.py")  # redirect's step 3, imported by redirect alone
    after = digests()
    assert after[REDIRECT] != before[REDIRECT]
    assert after[RETRAIN] == before[RETRAIN] and after[SURGERY] == before[SURGERY]


@pytest.mark.parametrize("shared", ["engine/train.py", "models/vae.py", "workflows/forget.py"])
def test_an_edit_of_shared_code_moves_every_digest(edit, shared):
    before = digests()
    edit(shared)
    after = digests()
    assert all(after[m] != before[m] for m in before)


@pytest.mark.parametrize(
    "untouched", ["methods/settings.py", "metrics/utility.py", "cli/compare.py"]
)
def test_settings_metrics_and_the_command_line_move_no_digest(edit, untouched):
    """The settings' resolved values are in the key already; the others never run in a forget."""
    before = digests()
    edit(untouched)
    assert digests() == before


def test_the_digest_is_the_same_in_another_process():
    code = f"from unlearn_cli.engine.sources import code_digest; print(code_digest({REDIRECT!r}))"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert other.stdout.strip() == digests()[REDIRECT]


def test_the_training_digest_moves_with_the_engine_and_not_with_a_method(edit):
    sources.training_digest.cache_clear()
    before = sources.training_digest()
    edit("methods/redirect.py")
    sources.training_digest.cache_clear()
    assert sources.training_digest() == before  # an original does not depend on a method
    edit("engine/train.py")
    sources.training_digest.cache_clear()
    assert sources.training_digest() != before
