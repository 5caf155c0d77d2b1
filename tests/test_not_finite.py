"""Weights and numbers that are not finite: a checkpoint with a NaN weight is refused where it is
used and shown as a problem by `inspect`; a run that diverges writes nothing; no --json document
holds NaN or Infinity."""

from __future__ import annotations

import dataclasses
import json
import math
import shutil

import pytest
import torch

from unlearn_cli.engine.checkpoint import load_checkpoint, save_checkpoint
from unlearn_cli.engine.files import json_text


def strict(text: str):
    """json.loads that rejects NaN and Infinity, as RFC 8259 does."""

    def refuse(name: str):
        raise ValueError(f"{name} is not JSON")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture(scope="module")
def spoiled(tiny_vae, tmp_path_factory):
    """The tiny VAE with a NaN in one weight and an infinity in a later one."""
    ckpt = load_checkpoint(tiny_vae)
    state = ckpt.model.state_dict()
    names = sorted(state)
    state[names[1]].view(-1)[0] = float("nan")
    state[names[-1]].view(-1)[0] = float("inf")
    ckpt.model.load_state_dict(state)
    path = tmp_path_factory.mktemp("nan") / "nan.safetensors"
    return save_checkpoint(dataclasses.replace(ckpt, model=ckpt.model), path), names[1]


def test_forget_refuses_a_nan_weight_and_writes_nothing(cli, spoiled, tmp_path):
    path, first = spoiled
    out = tmp_path / "out.safetensors"
    result = cli("forget", path, "--class", "1", "--out", out)
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and f"tensor {first} holds NaN" in result.stderr
    assert not out.exists()


def test_evaluate_refuses_a_nan_weight(cli, spoiled, tiny_vae):
    path, first = spoiled
    for args in (("evaluate", path), ("evaluate", tiny_vae, "--reference", path)):
        result = cli(*args, "--samples", "10", "--json")
        assert result.exit_code == 2 and f"tensor {first}" in result.stderr
        assert result.stdout == ""


def test_inspect_shows_the_nan_weights_as_a_problem(cli, spoiled):
    path, first = spoiled
    result = cli("inspect", path)
    assert result.exit_code == 0, result.stderr
    assert first in result.stdout and "NaN or infinite" in result.stdout
    problems = strict(cli("inspect", path, "--json").stdout)["problems"]
    assert len(problems) == 2 and first in problems[0]


def test_inspect_of_a_sound_checkpoint_has_no_problems(cli, tiny_vae):
    assert strict(cli("inspect", tiny_vae, "--json").stdout)["problems"] == []


def test_a_forget_that_diverges_writes_nothing(cli, tiny_vae, tmp_path, monkeypatch):
    from unlearn_cli.methods.ascent import Ascent

    real = Ascent.unlearn

    def diverging(self, *args, **kwargs):
        result = real(self, *args, **kwargs)
        with torch.no_grad():
            next(result.model.parameters()).fill_(float("nan"))
        return result

    monkeypatch.setattr(Ascent, "unlearn", diverging)
    model, out, ledger = tmp_path / "m.safetensors", tmp_path / "o.safetensors", tmp_path / "L"
    shutil.copy(tiny_vae, model)
    args = ("--class", "1", "--method", "ascent", "--out", out, "--ledger", ledger)
    result = cli("forget", model, *args)
    assert result.exit_code == 2
    assert "ascent made tensor" in result.stderr and "nothing written" in result.stderr
    assert not out.exists() and not ledger.exists()


def test_training_that_diverges_stops(tiny_spec, tiny_vae_config):
    from unlearn_cli.data.spec import load_split
    from unlearn_cli.engine.progress import NullProgress
    from unlearn_cli.engine.train import TrainConfig, fit
    from unlearn_cli.errors import DivergedError
    from unlearn_cli.models import VAE

    model = VAE.from_config(tiny_vae_config)
    cfg = TrainConfig(epochs=2, batch_size=100, seed=0)
    with pytest.raises(DivergedError, match="loss became nan in epoch 1"):
        fit(
            model,
            load_split(tiny_spec),
            cfg,
            torch.device("cpu"),
            lambda m, x, y: m.loss(x) * float("nan"),
            NullProgress(),
            "vae",
        )


def test_json_text_turns_what_is_not_finite_into_null_with_the_reason():
    doc = {"utility": {"retain_elbo": math.nan, "fid": 1.5}, "values": [1.0, math.inf]}
    parsed = strict(json_text(doc))
    assert parsed["utility"] == {"retain_elbo": None, "fid": 1.5}
    assert parsed["values"] == [1.0, None]
    assert set(parsed["not_finite"]) == {"utility.retain_elbo", "values[1]"}
    assert "nan" in parsed["not_finite"]["utility.retain_elbo"]
    assert strict(json_text({"a": 1})) == {"a": 1}  # nothing added when all is finite


def test_evaluate_json_never_holds_nan(cli, tiny_vae, monkeypatch):
    from unlearn_cli.workflows import evaluate as evaluation

    real = evaluation.evaluate

    def with_nan(*args, **kwargs):
        result = real(*args, **kwargs)
        result["utility"]["retain_elbo"] = math.nan
        return result

    monkeypatch.setattr(evaluation, "evaluate", with_nan)
    result = cli("evaluate", tiny_vae, "--samples", "10", "--json")
    assert result.exit_code == 0, result.stderr
    parsed = strict(result.stdout)
    assert parsed["utility"]["retain_elbo"] is None
    assert "utility.retain_elbo" in parsed["not_finite"]
