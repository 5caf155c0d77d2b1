"""What comes back in a stream: a later forget re-checks earlier class requests by their
images' -ELBO against the levels recorded when they were forgotten."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from conftest import parse_json

from unlearn_cli.data.images import split_by_ids
from unlearn_cli.data.requests import training_set
from unlearn_cli.engine.checkpoint import load_checkpoint, save_checkpoint
from unlearn_cli.workflows.recheck import (
    COMEBACK,
    RECHECK_SIZE,
    came_back,
    comeback,
    level,
    sample,
)

COMING_BACK = "is coming back"


def test_the_comeback_is_the_share_of_the_way_back_to_the_level_before():
    assert comeback(before=100.0, after=200.0, now=200.0) == 0.0  # still forgotten
    assert comeback(100.0, 200.0, 180.0) == pytest.approx(0.2)
    assert comeback(100.0, 200.0, 100.0) == 1.0  # as well explained as before
    assert comeback(100.0, 200.0, 90.0) == pytest.approx(1.1)  # better than before
    assert comeback(100.0, 200.0, 210.0) == pytest.approx(-0.1)  # further forgotten
    assert comeback(100.0, 100.0, 50.0) is None  # the forget raised nothing: nothing to lose
    rows = [{"id": k, "comeback": c} for k, c in (("a", 0.2), ("b", 0.9), ("c", None), ("d", 0.3))]
    assert [r["id"] for r in came_back(rows)] == ["b", "d"]  # past COMEBACK, furthest first
    assert COMEBACK == 0.25


def test_the_warning_says_how_far_back_in_one_line():
    from unlearn_cli.cli.forget import comeback_line

    row = {"id": "r7", "selector": "class 7", "before": 50.0, "after": 80.0, "now": 70.0}
    line = comeback_line([{**row, "comeback": 1 / 3}])
    assert line.startswith("request r7 (class 7) is coming back: its images' -ELBO is 70.0 nats")
    assert "nats, 33% of the way" in line
    assert "from 80.0 after it was forgotten back to 50.0 before (above 25%)" in line
    beyond = comeback_line([{**row, "now": 40.0, "comeback": 4 / 3}, {**row, "comeback": 0.3}])
    assert "back to or below the 50.0 before it was forgotten (80.0 after), and 1 more" in beyond
    assert "\n" not in line + beyond


@pytest.fixture
def forgot_one(cli, tiny_vae, tmp_path):
    """The tiny model after forgetting the 1s (one surgery epoch), and its lineage entry."""
    child = tmp_path / "forgot-1.safetensors"
    parse_json(cli("forget", tiny_vae, "--class", "1", "--method", "surgery", "--epochs", "1",
                   "--out", child, "--json"))  # fmt: skip
    return child


def forget_three(cli, parent, out):
    """Forget the 3s with surgery at 0 epochs (the weights stay as they are): the re-check
    alone moves, and it sees what `parent` does to the 1s."""
    r = cli("forget", parent, "--class", "3", "--method", "surgery", "--epochs", "0",
            "--out", out, "--json")  # fmt: skip
    return parse_json(r), [line for line in r.stderr.splitlines() if COMING_BACK in line]


def test_a_forget_records_each_class_requests_level_before_and_after(forgot_one, tiny_vae):
    (entry,) = load_checkpoint(forgot_one).lineage
    assert entry["recheck"] == []  # nothing earlier to re-check
    levels = entry["request_elbo"]["cli-class-1"]
    assert levels["after"] > levels["before"]  # forgetting made the 1s worse explained
    # recomputed by hand: the same seeded sample of the 1s under the parent and the child
    parent, child = load_checkpoint(tiny_vae), load_checkpoint(forgot_one)
    (request,) = child.forgotten_requests()
    data = training_set(parent.dataset)
    images = sample(request, data, parent.dataset)
    assert images is not None and set(images.labels.tolist()) == {1}
    assert len(images) == min(RECHECK_SIZE, int((data.labels == 1).sum()))
    cpu = torch.device("cpu")
    assert levels["before"] == pytest.approx(level(parent.model, images, cpu), abs=1e-3)
    assert levels["after"] == pytest.approx(level(child.model, images, cpu), abs=1e-3)


def test_the_sample_is_fixed_and_capped(tiny_vae, monkeypatch):
    from unlearn_cli.data.requests import Request
    from unlearn_cli.workflows import recheck

    monkeypatch.setattr(recheck, "RECHECK_SIZE", 50)
    ckpt = load_checkpoint(tiny_vae)
    data = training_set(ckpt.dataset)
    threes = Request("r", "class", (3,))
    first, again = (sample(threes, data, ckpt.dataset) for _ in range(2))
    assert first is not None and again is not None and len(first) == 50
    assert torch.equal(first.ids, again.ids) and set(first.labels.tolist()) == {3}


def test_a_class_that_stays_forgotten_raises_no_warning(cli, forgot_one, tmp_path):
    out = tmp_path / "forgot-3.safetensors"
    summary, warned = forget_three(cli, forgot_one, out)
    assert warned == []
    (row,) = load_checkpoint(out).lineage[-1]["recheck"]
    then = load_checkpoint(forgot_one).lineage[0]["request_elbo"]["cli-class-1"]
    assert (row["id"], row["selector"]) == ("cli-class-1", "class 1")
    assert (row["before"], row["after"]) == (then["before"], then["after"])
    assert row["now"] == pytest.approx(then["after"], abs=1e-3) and row["comeback"] == 0.0
    assert summary["recheck"] == [row]  # --json reports what the lineage records


def test_a_class_brought_back_by_fine_tuning_warns_in_one_line(cli, forgot_one, tmp_path):
    """The relearning attack's few-shot fine-tuning (10 steps on the 1s) brings them back; the
    next forget, of another class, sees it and says so."""
    from unlearn_cli.workflows.relearn import finetune

    child = load_checkpoint(forgot_one)
    data = training_set(child.dataset)
    ones, _ = split_by_ids(data, data.ids[data.labels == 1])
    tuned = finetune(child.model, ones, 10, 1e-3, 0, torch.device("cpu"))
    attacked = tmp_path / "attacked.safetensors"  # its lineage still says the 1s are forgotten
    save_checkpoint(dataclasses.replace(child, model=tuned), attacked)
    out = tmp_path / "forgot-3.safetensors"
    summary, warned = forget_three(cli, attacked, out)
    (row,) = load_checkpoint(out).lineage[-1]["recheck"]
    assert row["now"] < row["after"] and row["comeback"] > COMEBACK
    assert len(warned) == 1 and "request cli-class-1 (class 1) is coming back" in warned[0]
    assert f"-ELBO is {row['now']:.1f} nats" in warned[0]
    assert summary["recheck"] == [row]
    assert load_checkpoint(out).lineage[-1]["recheck_seconds"] >= 0


def test_entries_written_before_the_levels_are_not_rechecked(cli, forgot_one, tmp_path):
    old = load_checkpoint(forgot_one)
    del old.lineage[0]["request_elbo"]  # as an earlier version wrote it
    save_checkpoint(old, tmp_path / "old.safetensors")
    out = tmp_path / "forgot-3.safetensors"
    summary, warned = forget_three(cli, tmp_path / "old.safetensors", out)
    assert summary["recheck"] == [] and warned == []
    assert list(load_checkpoint(out).lineage[-1]["request_elbo"]) == ["cli-class-3"]
