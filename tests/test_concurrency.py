"""Concurrent and killed forgets, in real processes: whole receipt lines, one winner per output
path, and nothing half written or left behind that a rerun trips over."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import parse_json

from unlearn_cli.engine.checkpoint import load_checkpoint, read_metadata
from unlearn_cli.engine.files import atomic_write
from unlearn_cli.errors import OutputError

UNLEARN = Path(sys.executable).parent / "unlearn"
FORGET = ("forget", "m.safetensors", "--method", "surgery")


@pytest.fixture
def env(cache_dir) -> dict[str, str]:
    env = {**os.environ, "UNLEARN_CACHE_DIR": str(cache_dir), "OMP_NUM_THREADS": "1"}
    env.pop("UNLEARN_DEBUG", None)
    env.pop("SOURCE_DATE_EPOCH", None)
    return env


@pytest.fixture
def workdir(tiny_vae, tmp_path) -> Path:
    """m.safetensors (the tiny VAE) and two manifests of 40 single-sample requests each."""
    shutil.copy(tiny_vae, tmp_path / "m.safetensors")
    from unlearn_cli.data.requests import training_set

    ids = training_set(load_checkpoint(tiny_vae).dataset).ids.tolist()
    for name, part in (("a", ids[:40]), ("b", ids[40:80])):
        lines = ["requests:"] + [f"  - id: {name}-{i}\n    indices: [{i}]" for i in part]
        (tmp_path / f"{name}.yaml").write_text("\n".join(lines) + "\n")
    return tmp_path


def start(env, cwd, *args) -> subprocess.Popen:
    return subprocess.Popen(
        [str(UNLEARN), *map(str, args)], cwd=cwd, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def finish(proc: subprocess.Popen) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=120)
    return proc.returncode, out, err


def temp_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".unlearn-tmp"))


def test_two_processes_append_whole_receipts_to_one_ledger(env, workdir):
    procs = [
        start(env, workdir, *FORGET, "--manifest", f"{n}.yaml", "--out", f"{n}.safetensors",
              "--ledger", "L.jsonl", "--json")
        for n in ("a", "b")
    ]  # fmt: skip
    results = [finish(p) for p in procs]
    assert [rc for rc, _, _ in results] == [0, 0], results
    shas = {json.loads(out)["out"]: json.loads(out)["sha256"] for _, out, _ in results}
    receipts = [json.loads(line) for line in (workdir / "L.jsonl").read_text().splitlines()]
    assert len(receipts) == 80
    assert sorted(r["request_id"] for r in receipts) == sorted(
        [r["id"] for r in json.loads(results[0][1])["requests"]]
        + [r["id"] for r in json.loads(results[1][1])["requests"]]
    )
    for r in receipts:
        assert r["child_sha256"] == shas[r["checkpoint"]]
        assert r["checkpoint"] == f"{r['request_id'][0]}.safetensors"
    assert temp_files(workdir) == []


def test_two_processes_writing_one_output_one_wins_the_other_exits_2(env, workdir):
    procs = [
        start(env, workdir, *FORGET, "--manifest", f"{n}.yaml", "--ledger", "L.jsonl", "--json")
        for n in ("a", "b")
    ]
    results = [finish(p) for p in procs]
    assert sorted(rc for rc, _, _ in results) == [0, 2], results
    (winner,) = [json.loads(out) for rc, out, _ in results if rc == 0]
    (loser_err,) = [err for rc, _, err in results if rc == 2]
    lines = loser_err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert "m-forget-surgery.safetensors" in lines[0]
    out = workdir / "m-forget-surgery.safetensors"
    assert load_checkpoint(out).sha256 == winner["sha256"]
    receipts = [json.loads(line) for line in (workdir / "L.jsonl").read_text().splitlines()]
    assert {r["child_sha256"] for r in receipts} == {winner["sha256"]} and len(receipts) == 40
    assert temp_files(workdir) == []


def test_an_output_written_meanwhile_is_left_alone(tmp_path):
    """The exclusive write itself: the target appears while the temp file is being written."""
    target = tmp_path / "out.bin"

    def write(tmp):
        target.write_bytes(b"the other process")
        Path(tmp).write_bytes(b"ours")

    with pytest.raises(OutputError, match="written by another process"):
        atomic_write(target, write, overwrite=False)
    assert target.read_bytes() == b"the other process" and temp_files(tmp_path) == []


KILLER = """
import os, signal, sys
from pathlib import Path

point, args = sys.argv[1], sys.argv[2:]


def die(*_, **__):
    os.kill(os.getpid(), signal.SIGKILL)


if point == "method":  # the second step of the method's loop
    from unlearn_cli.cli.progress import RichProgress

    steps = []
    RichProgress.advance = lambda self, n=1, status="": steps.append(n) or len(steps) < 2 or die()
elif point == "write":  # half of the checkpoint's bytes are in the temp file
    real = Path.write_bytes
    Path.write_bytes = lambda self, data: real(self, data[: len(data) // 2]) and die()
elif point == "rename":  # the temp file is complete, the output not yet replaced
    os.replace = os.link = die
from unlearn_cli.cli import app

app(args)
"""


@pytest.mark.parametrize("point", ["method", "write", "rename"])
def test_a_killed_forget_leaves_every_file_as_it_was_and_a_rerun_succeeds(
    cli, env, workdir, point, monkeypatch
):
    args = [*FORGET, "--manifest", "a.yaml", "--out", "out.safetensors", "--ledger", "L.jsonl"]
    shutil.copy(workdir / "m.safetensors", workdir / "out.safetensors")  # an existing output
    (workdir / "L.jsonl").write_text('{"request_id": "earlier"}\n')
    before = {p.name: p.read_bytes() for p in workdir.iterdir()}
    proc = subprocess.run(
        [sys.executable, "-c", KILLER, point, *args],
        cwd=workdir, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    after = {p.name: p.read_bytes() for p in workdir.iterdir() if p.name in before}
    assert after == before  # input, existing output and ledger untouched
    monkeypatch.chdir(workdir)
    assert parse_json(cli(*args, "--json"))["out"] == "out.safetensors"
    (entry,) = read_metadata(workdir / "out.safetensors")["lineage"]
    assert len(entry["requests"]) == 40
    assert entry["parent_sha256"] == load_checkpoint(workdir / "m.safetensors").sha256
    assert temp_files(workdir) == []
    assert len((workdir / "L.jsonl").read_text().splitlines()) == 41


def test_a_ledger_that_stays_locked_is_one_line_exit_2_and_nothing_written(
    cli, workdir, monkeypatch
):
    from filelock import FileLock

    import unlearn_cli.workflows.ledger as ledger_module

    monkeypatch.setattr(ledger_module, "LOCK_TIMEOUT", 0.2)
    monkeypatch.chdir(workdir)
    listing = sorted(p.name for p in workdir.iterdir())
    with FileLock(str(workdir / "L.jsonl.lock")):  # held as another writer would
        result = cli(*FORGET, "--manifest", "a.yaml", "--ledger", "L.jsonl")
    assert result.exit_code == 2 and "stayed locked" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in workdir.iterdir() if p.suffix != ".lock") == listing
