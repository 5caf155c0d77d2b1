"""torchrun with 2 CPU processes (gloo): the same numbers as one process, one writer, and a
failing rank that stops the run instead of hanging it.

Each test launches `python -m torch.distributed.run --standalone --nproc-per-node 2`, the
command users run, so it exercises the process group, the rank-0-only output and torchrun's own
failure handling; a few seconds each.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import distributed_worker as worker
import pytest
import torch
from safetensors.torch import load_file

TESTS = Path(__file__).parent
TIMEOUT = 240  # seconds; a hang fails the test instead of stalling the suite


# what libstdc++ prints when gloo's worker threads are torn down mid-use at process exit, after
# the group was destroyed: a crash inside torch's teardown (pytorch/pytorch#179291 describes
# the family), not in the command's work
GLOO_TEARDOWN_ABORT = "terminate called without an active exception"


def torchrun(*args, nproc: int = 2) -> subprocess.CompletedProcess:
    """The command under torchrun, run once more if a rank died in gloo's own teardown."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    cmd += [f"--nproc-per-node={nproc}", *map(str, args)]
    run = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=TIMEOUT)
    if GLOO_TEARDOWN_ABORT in run.stderr:
        run = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=TIMEOUT)
    return run


def unlearn(*args) -> list[str]:
    return ["-m", "unlearn_cli", *args]


def test_surgery_step_on_two_ranks_is_the_single_process_step(tmp_path):
    out = tmp_path / "two.safetensors"
    run = torchrun(TESTS / "distributed_worker.py", "surgery", out)
    assert run.returncode == 0, run.stderr
    two = load_file(out)
    one = worker.surgery_step_on(slice(None))  # the whole global batch in one process
    assert two.keys() == one.keys()
    moved = max((one[k] - worker.tiny_vae().state_dict()[k]).abs().max().item() for k in one)
    assert moved > 1e-4  # the step did something
    for name in one:
        torch.testing.assert_close(two[name], one[name], atol=1e-6, rtol=0)


def test_projecting_per_rank_then_averaging_is_a_different_step():
    """Why g_f and g_r are all-reduced before the projection: the other order differs."""
    from unlearn_cli.methods import scoped_parameters
    from unlearn_cli.methods.steps import flat_grad, project

    model = worker.tiny_vae()
    params = scoped_parameters(model, "decoder")
    x_f, x_r = worker.global_batches()

    def grads(rows):
        return flat_grad(model.loss(x_f[rows]), params), flat_grad(model.loss(x_r[rows]), params)

    with worker.no_noise():
        g_f, g_r = grads(slice(None))
        halves = [grads(slice(0, 8)), grads(slice(8, 16))]
    per_rank = sum(project(-f, r) for f, r in halves) / 2
    global_first = project(-g_f, g_r)
    assert torch.dot(global_first, g_r).abs() < 1e-3 * g_r.norm() * global_first.norm()
    assert (per_rank - global_first).norm() > 1e-3 * global_first.norm()


def test_evaluate_on_two_ranks_gives_the_single_process_metrics(cli, tiny_vae, tiny_judge):
    args = ("evaluate", tiny_vae, "--judge", tiny_judge, "--target", "class:1")
    args += ("--samples", "300", "--batch-size", "64", "--device", "cpu", "--json")
    one = cli(*args)
    assert one.exit_code == 0, one.stderr
    two = torchrun(*unlearn(*args))
    assert two.returncode == 0, two.stderr
    a, b = json.loads(one.stdout), json.loads(two.stdout)  # rank 0 alone prints: one document
    for part in ("privacy", "utility"):
        assert a[part].keys() == b[part].keys()
        for key, value in a[part].items():
            if value is None:
                assert b[part][key] is None, key
            else:
                assert b[part][key] == pytest.approx(value, rel=1e-5, abs=1e-6), key


def test_train_on_two_ranks_writes_one_valid_checkpoint(tmp_path):
    from unlearn_cli.engine.checkpoint import load_checkpoint

    out = tmp_path / "m.safetensors"
    args = ("train", "--classes", "1,3", "--limit", "200", "--epochs", "1", "--batch-size", "32")
    run = torchrun(*unlearn(*args, "--latent-dim", "4", "--device", "cpu", "--out", out))
    assert run.returncode == 0, run.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.safetensors"]  # no temp files
    ckpt = load_checkpoint(out, "vae")
    assert ckpt.training["world_size"] == 2 and ckpt.training["backend"] == "gloo"
    assert ckpt.training["batch_size"] == 32  # the global batch, 16 per rank
    assert run.stdout.count("trained vae") == 1  # rank 0 alone reports
    assert run.stderr.count(f"wrote {out}") == 1 and run.stderr.count("vae epoch 1/1") == 1


def test_a_global_batch_that_does_not_divide_is_refused(tmp_path):
    out = tmp_path / "m.safetensors"
    args = ("train", "--classes", "1,3", "--limit", "200", "--epochs", "1", "--batch-size", "33")
    run = torchrun(*unlearn(*args, "--device", "cpu", "--out", out))
    assert run.returncode != 0
    assert run.stderr.count("batch size 33 does not divide among 2 processes") == 1
    assert not out.exists()


def test_a_failing_rank_stops_the_run_without_hanging():
    run = torchrun(TESTS / "distributed_worker.py", "fail")  # a hang raises TimeoutExpired
    assert run.returncode != 0
    assert "error: rank 1: unexpected RuntimeError: injected failure" in run.stderr


@pytest.mark.parametrize("method", ["surgery", "redirect"])
def test_forget_on_two_ranks_records_the_world_in_the_lineage(tmp_path, tiny_vae, method):
    from unlearn_cli.engine.checkpoint import load_checkpoint

    out = tmp_path / "f.safetensors"
    args = ("forget", tiny_vae, "--class", "1", "--method", method, "--out", out, "--json")
    run = torchrun(*unlearn(*args, "--device", "cpu"))
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["out"] == str(out)  # one JSON document, from rank 0
    entry = load_checkpoint(out, "vae").lineage[-1]
    assert (entry["world_size"], entry["backend"], entry["method"]) == (2, "gloo", method)


def test_compare_on_two_ranks_runs_writes_once_and_resumes(tmp_path):
    """An experiment under torchrun: one JSON document, rank 0's cache, and a rerun that reuses
    all of it (every rank takes rank 0's cache decision, so none waits in a collective alone)."""
    experiment = tmp_path / "tiny.yaml"
    experiment.write_text(
        "dataset: {name: mnist, classes: [1, 3, 8], limit: 300}\n"
        "model: {latent_dim: 4}\ntrain: {epochs: 1, batch_size: 32}\njudge: {epochs: 1}\n"
        "forget: {requests: [{id: a, class: 1}]}\nmethods: [surgery]\nseeds: [0]\n"
        "evaluate: {samples: 64}\nout_dir: runs\n"
    )
    args = unlearn("compare", experiment, "--device", "cpu", "--json")
    first = torchrun(*args)
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    assert [r["label"] for r in report["rows"]] == ["BEFORE", "surgery", "RETRAIN"]
    written = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert not [name for name in written if "unlearn-tmp" in name]
    again = torchrun(*args)
    assert again.returncode == 0, again.stderr
    resumed = json.loads(again.stdout)
    assert resumed["computed"] == 0 and resumed["rows"] == report["rows"]
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == written


@pytest.mark.parametrize(("argv", "together"), [(["--version"], True), (["nope"], False)])
def test_the_command_leaves_the_process_group_together_only_after_a_clean_end(
    monkeypatch, argv, together
):
    """A clean end waits for the other ranks before tearing the group down (once in CI, rank 0
    aborted in teardown after writing); after an error (here a usage error, exit 2) a peer may
    never arrive, so the atexit handler leaves at once instead."""
    from unlearn_cli import distributed
    from unlearn_cli.cli import main

    calls = []
    monkeypatch.setattr(distributed, "leave", lambda together=False: calls.append(together))
    for name, value in (("RANK", "0"), ("WORLD_SIZE", "2"), ("LOCAL_RANK", "0")):
        monkeypatch.setenv(name, value)  # as torchrun starts rank 0
    monkeypatch.setattr(sys, "argv", ["unlearn", *argv])
    with pytest.raises(SystemExit) as end:
        main()
    assert (end.value.code in (0, None)) == together
    assert calls == ([True] if together else [])


def test_a_folder_trains_and_forgets_an_attribute_on_two_ranks(tmp_path):
    from folder_fixture import make_folder

    from unlearn_cli.engine.checkpoint import load_checkpoint

    root = make_folder(tmp_path / "photos", per_class=6, test_per_class=2, size=16)
    vae, child = tmp_path / "vae.safetensors", tmp_path / "child.safetensors"
    args = ("train", "--dataset", "folder", "--data-dir", root, "--epochs", "1")
    run = torchrun(*unlearn(*args, "--batch-size", "8", "--latent-dim", "4", "--out", vae))
    assert run.returncode == 0, run.stderr
    args = ("forget", vae, "--attribute", "Striped", "--out", child, "--json")
    run = torchrun(*unlearn(*args, "--device", "cpu"))
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["forget_samples"] == 9  # one JSON document, from rank 0
    entry = load_checkpoint(child, "vae").lineage[-1]
    assert (entry["world_size"], entry["method"]) == (2, "redirect")
    assert entry["requests"] == [{"id": "cli-attribute-Striped", "attribute": ["Striped"]}]
