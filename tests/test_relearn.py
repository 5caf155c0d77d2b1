"""The relearning attack, retraining's floor, sampling error and the no-op warning (issue 24):
tiny and small models, values against what they must be."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from unlearn_cli.data.requests import Request
from unlearn_cli.engine.checkpoint import load_checkpoint
from unlearn_cli.metrics.privacy import wilson_interval
from unlearn_cli.workflows.evaluate import evaluate
from unlearn_cli.workflows.forget import did_nothing
from unlearn_cli.workflows.gates import like_reference, reference_failures
from unlearn_cli.workflows.targets import parse_target

CPU = torch.device("cpu")


def test_wilson_interval_against_a_hand_computation():
    # 8 of 200 at z = 1.96 (z^2 = 3.8416), by hand: centre = (0.04 + 3.8416 / 400) /
    # (1 + 3.8416 / 200) = 0.0496040 / 1.019208 = 0.0486692; half = 1.96 * sqrt(0.04 * 0.96 /
    # 200 + 3.8416 / 160000) / 1.019208 = 1.96 * 0.0146973 / 1.019208 = 0.0282637. At 0 of n
    # and n of n the interval ends at z^2 / (n + z^2) and n / (n + z^2).
    lo, hi = wilson_interval(8, 200)
    assert lo == pytest.approx(0.0486692 - 0.0282637, abs=1e-6)
    assert hi == pytest.approx(0.0486692 + 0.0282637, abs=1e-6)
    assert wilson_interval(0, 10000) == pytest.approx((0.0, 3.8416 / 10003.8416), abs=1e-9)
    assert wilson_interval(10, 10) == pytest.approx((10 / 13.8416, 1.0), abs=1e-9)
    with pytest.raises(ValueError):
        wilson_interval(3, 2)


def test_a_miss_says_whether_it_is_beyond_sampling_error():
    def result(fratio, interval, ref_interval):
        checks = {"fratio": fratio, "fratio_interval": interval}
        ref = {"fratio": 0.0, "fratio_interval": ref_interval, "precision": None}
        ref.update(fid=None, retain_elbo=None, seconds=None)
        return {
            "privacy": checks,
            "utility": {"precision": None, "fid": None, "retain_elbo": None},
            "cost": {"seconds": None},
            "reference": ref,
        }

    near = result(0.025, [0.0, 0.06], [0.0, 0.02])  # 0.005 over 0.02, errors of 0.015 and 0.005
    near["like_reference"] = like_reference(near)
    check = near["like_reference"][0]
    se_v, se_r = 0.06 / 3.92, 0.02 / 3.92
    assert check["noise"] == pytest.approx(1.96 * math.sqrt(se_v**2 + se_r**2))
    assert check["passed"] is False and check["within_noise"] is True
    assert "within sampling error" in reference_failures(near)[0]
    far = result(0.3, [0.29, 0.31], [0.0, 0.002])
    far["like_reference"] = like_reference(far)
    assert far["like_reference"][0]["within_noise"] is False
    assert "beyond sampling error" in reference_failures(far)[0]


def test_fratio_has_its_wilson_interval_and_fid_its_spread(tiny_vae, tiny_judge):
    vae, judge = load_checkpoint(tiny_vae), load_checkpoint(tiny_judge)
    r = evaluate(vae, judge, target=parse_target("class:1"), samples=200, batch_size=64, spread=3)
    fratio, (lo, hi) = r["privacy"]["fratio"], r["privacy"]["fratio_interval"]
    assert (lo, hi) == pytest.approx(wilson_interval(round(fratio * 200), 200))
    assert r["utility"]["fid_std"] > 0 and r["utility"]["precision_std"] >= 0
    plain = evaluate(vae, judge, target=parse_target("class:1"), samples=200, batch_size=64)
    assert plain["utility"]["fid_std"] is None
    assert plain["utility"]["fid"] == r["utility"]["fid"]  # the first seed's, unchanged
    assert r["cost"]["eval_seconds"] >= 0 and r["cost"]["eval_peak_rss_mb"] > 0


def test_the_floor_of_a_model_against_itself_is_zero(tiny_vae, tiny_judge):
    vae, judge = load_checkpoint(tiny_vae), load_checkpoint(tiny_judge)
    r = evaluate(
        vae,
        judge,
        target=parse_target("class:1"),
        samples=100,
        batch_size=64,
        reference=vae,
        score_reference=True,
        second_reference=vae,
    )
    metrics = r["floor"]["metrics"]
    for key in ("fratio", "is", "fid", "precision", "recall", "retain_elbo", "forget_elbo"):
        assert metrics[key]["floor"] == 0 and metrics[key]["distance"] == 0, key
        assert metrics[key]["within"] is True
    assert metrics["fid_reference"]["floor"] == pytest.approx(0, abs=1e-3)  # samples vs same
    assert metrics["mia_auc"]["within"] is None  # no individual samples were forgotten


def test_a_second_reference_needs_a_first(tiny_vae):
    from unlearn_cli.errors import UsageError

    vae = load_checkpoint(tiny_vae)
    with pytest.raises(UsageError):
        evaluate(vae, None, samples=10, second_reference=vae)


def test_relearning_brings_a_suppressed_class_back_faster_than_from_a_model_that_never_saw_it(
    small_models,
):
    """The default forget of the 8 against a model trained without it: three few-shot steps
    on 64 images of 8, and ten benign ones on retained images, bring more 8s back from the
    forgetting model than from the one that never saw an 8."""
    from unlearn_cli.engine.train import TrainConfig, train_vae
    from unlearn_cli.methods import configure, get_method
    from unlearn_cli.models import VAEConfig
    from unlearn_cli.workflows.forget import plan_forget, run_forget

    original, judge = small_models
    request = Request.from_dict({"id": "r8", "class": [8]})
    redirect = get_method("redirect")
    plan = plan_forget(original, [request])
    forgot = run_forget(original, plan, redirect, configure(redirect, original, {}), CPU)
    never_spec = dataclasses.replace(original.dataset, exclude=({"id": "r8", "class": [8]},))
    vae_cfg = VAEConfig(**original.model_config)
    never = train_vae(never_spec, vae_cfg, TrainConfig(epochs=8, batch_size=64, seed=0), CPU)

    def attacked(steps: int) -> dict:
        return evaluate(
            forgot,
            judge,
            target=parse_target("class:8"),
            samples=200,
            batch_size=64,
            reference=never,
            score_reference=True,
            relearn_steps=steps,
        )["privacy"]

    fast = attacked(3)
    assert fast["relearn_fratio_fewshot"] > fast["relearn_fratio_fewshot_reference"]
    assert fast["relearn_gap"] == pytest.approx(
        fast["relearn_fratio_fewshot"] - fast["relearn_fratio_fewshot_reference"]
    )
    benign = attacked(10)
    assert benign["relearn_fratio_benign"] > benign["relearn_fratio_benign_reference"]
    assert benign["relearn_mia_auc_fewshot"] is None  # a class: fratio, not membership


def test_a_forget_that_changed_nothing_says_so():
    before = torch.tensor([100.0, 110.0, 120.0, 130.0])
    assert did_nothing(before, before, same=True) == "wrote weights equal to its input"
    assert "within noise" in did_nothing(
        before, before + torch.tensor([0.5, -0.5, 0.4, -0.4]), False
    )
    assert did_nothing(before, before + 20, same=False) is None


@pytest.mark.parametrize("epochs, warns", [("0", True), ("1", False)])
def test_the_no_op_warning_fires_for_epochs_0_and_not_otherwise(
    cli, tiny_vae, tmp_path, epochs, warns
):
    out = tmp_path / "out.safetensors"
    r = cli(
        "forget", tiny_vae, "--class", "8", "--method", "surgery", "--epochs", epochs, "--out", out
    )
    assert r.exit_code == 0, r.stderr
    warned = [line for line in r.stderr.splitlines() if "looks like it did nothing" in line]
    assert len(warned) == (1 if warns else 0)
    entry = load_checkpoint(out).lineage[-1]
    assert (
        (entry["no_op"] == "wrote weights equal to its input") if warns else entry["no_op"] is None
    )
    assert entry["forget_elbo_after"] > entry["forget_elbo_before"] or warns
    assert entry["peak_rss_mb"] > 0


def test_relearn_gate_needs_steps_and_a_reference(cli, tiny_vae):
    r = cli("evaluate", tiny_vae, "--max-relearn-gap", "0.1")
    assert r.exit_code == 2 and "--relearn-steps" in r.stderr
