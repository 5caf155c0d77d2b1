"""The installed `unlearn` command, run as a user would: in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

UNLEARN = Path(sys.executable).parent / "unlearn"


@pytest.fixture
def run(cache_dir, tmp_path):
    """Run a command in `tmp_path` with the session's data cache; returns the finished process."""
    env = {**os.environ, "UNLEARN_CACHE_DIR": str(cache_dir)}
    env.pop("UNLEARN_DEBUG", None)

    def run(*args: str | Path) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(a) for a in args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )

    return run


def test_command_is_installed_next_to_python():
    assert UNLEARN.is_file() and os.access(UNLEARN, os.X_OK)


def test_help_lists_the_commands(run):
    result = run(UNLEARN, "--help")
    assert result.returncode == 0, result.stderr
    for command in ("train", "forget", "evaluate", "compare"):
        assert command in result.stdout


def test_python_m_help(run):
    result = run(sys.executable, "-m", "unlearn_cli", "--help")
    assert result.returncode == 0, result.stderr
    assert "train" in result.stdout


def test_version(run):
    from unlearn_cli import __version__

    result = run(UNLEARN, "--version")
    assert result.returncode == 0 and result.stdout.strip() == f"unlearn {__version__}"


def test_cli_import_does_not_import_torch(run):
    code = "import sys, unlearn_cli.cli; assert 'torch' not in sys.modules, 'torch imported'"
    result = run(sys.executable, "-c", code)
    assert result.returncode == 0, result.stderr


def test_usage_errors_come_before_torch_is_imported(run):
    """A mistyped flag is reported at once, not after the seconds torch takes to import."""
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from unlearn_cli.cli import app\n"
        "for args in (['--model', 'foo'], ['--classes', '1,12'], ['--classes', ','],\n"
        "             ['--dataset', 'celeba', '--classes', '1,3']):\n"
        "    result = CliRunner().invoke(app, ['train', *args])\n"
        "    assert result.exit_code == 2, result.output\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
    )
    result = run(sys.executable, "-c", code)
    assert result.returncode == 0, result.stderr


def test_train_end_to_end(run, tmp_path):
    out = tmp_path / "m.safetensors"
    args = "train --classes 1,3,8 --epochs 1 --limit 200 --json --out"
    result = run(UNLEARN, *args.split(), out)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["checkpoint"] == str(out) and summary["samples"] == 200
    assert out.is_file()
    from unlearn_cli.engine.checkpoint import load_checkpoint

    assert load_checkpoint(out, kind="vae").dataset.classes == (1, 3, 8)


def test_bad_input_exits_2_with_one_line(run, tmp_path):
    result = run(UNLEARN, "train", "--model", "foo", "--out", tmp_path / "m.safetensors")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.stderr
    assert result.stdout == "" and not (tmp_path / "m.safetensors").exists()
