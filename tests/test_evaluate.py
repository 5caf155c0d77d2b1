"""`unlearn evaluate` and the engine behind it: the result's shape, what the lineage implies,
gates and their exit code, judges that do not fit, grids."""

from __future__ import annotations

import copy
import dataclasses
import json

import numpy as np
import pytest
import torch
from conftest import parse_json

from unlearn_cli.engine.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from unlearn_cli.errors import EXIT_GATE, EXIT_USAGE, UsageError
from unlearn_cli.workflows.evaluate import evaluate
from unlearn_cli.workflows.gates import GATES, JUDGED, gates, like_reference, reference_failures
from unlearn_cli.workflows.targets import parse_target

SAMPLES = "200"
CPU = torch.device("cpu")


def variant(path, dest, **changes):
    """A copy of the checkpoint at `path` with some metadata changed, saved to `dest`."""
    ckpt = load_checkpoint(path)
    for key, value in changes.items():
        setattr(ckpt, key, value)
    return save_checkpoint(ckpt, dest)


def forget_entry(requests: list[dict], method: str = "surgery", seconds: float = 1.5) -> dict:
    return {
        "operation": "forget",
        "requests": requests,
        "forgotten_count": 0,
        "forgotten_sha256": "",
        "method": method,
        "hyperparameters": {},
        "seed": 0,
        "wall_seconds": seconds,
        "device": "cpu",
        "parent_sha256": "",
        "tool_version": "test",
        "created": "2026-01-01T00:00:00+00:00",
    }


@pytest.fixture(scope="module")
def forgotten_ids(tiny_spec) -> list[int]:
    """Identities of ten training samples of the tiny VAE."""
    from unlearn_cli.data.spec import load_split

    return load_split(tiny_spec).ids[:10].tolist()


def stderr_lines(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]


# The engine


def test_result_has_the_documented_structure(tiny_vae, tiny_judge):
    vae, judge = load_checkpoint(tiny_vae), load_checkpoint(tiny_judge)
    r = evaluate(vae, judge, target=parse_target("class:1"), samples=200, batch_size=64)
    top = ["model", "dataset", "target", "samples", "seed", "privacy", "utility", "cost"]
    assert list(r) == [*top, "judge"]
    attacks = ["mia_auc", "mia_tpr_at_1fpr", "mia_tpr_at_01fpr", "mia_calibrated_auc"]
    attacks += ["mia_calibrated_tpr_at_1fpr", "mia_calibrated_tpr_at_01fpr"]
    assert list(r["privacy"]) == [
        "fratio", "fratio_interval", *attacks, *(f"{k}_reference" for k in attacks)
    ]  # fmt: skip
    assert list(r["utility"]) == [
        "is",
        "fid",
        "precision",
        "recall",
        "fid_reference",
        "fid_std",
        "precision_std",
        "pixel_precision",
        "pixel_recall",
        "retain_elbo",
        "forget_elbo",
    ]
    assert list(r["cost"]) == [
        "seconds",
        "operation",
        "device",
        "peak_rss_mb",
        "cuda_max_allocated_mb",
        "eval_seconds",
        "eval_peak_rss_mb",
        "eval_cuda_max_allocated_mb",
    ]
    assert r["model"] == str(tiny_vae) and r["target"] == "class:1"
    assert (r["samples"], r["seed"]) == (200, 0)
    # by hand: the share of the seed-0 samples the judge calls a 1
    from unlearn_cli.data.spec import judge_classes

    z = torch.randn(200, vae.model.latent_dim, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        called = judge.model.eval()(vae.model.eval().decode(z)).argmax(1)
    ones = judge_classes(judge.dataset).index(1)
    assert r["privacy"]["fratio"] == pytest.approx((called == ones).float().mean().item())
    assert all(r["privacy"][k] is None for k in r["privacy"] if not k.startswith("fratio"))
    assert 1.0 <= r["utility"]["is"] <= 3.0  # at most the judge's number of classes
    assert r["utility"]["fid"] >= 0.0
    assert r["utility"]["retain_elbo"] > 0 and r["utility"]["forget_elbo"] > 0
    made = {k: r["cost"][k] for k in ("seconds", "operation", "device")}
    assert made == {"seconds": vae.train_seconds, "operation": "train", "device": "cpu"}
    assert r["cost"]["peak_rss_mb"] == vae.metrics["peak_rss_mb"] > 0  # recorded by training
    assert r["judge"] == {"path": str(tiny_judge), "test_accuracy": judge.metrics["test_accuracy"]}
    json.dumps(r)  # JSON-ready as it is


def test_same_seed_same_numbers(tiny_vae, tiny_judge):
    vae, judge = load_checkpoint(tiny_vae), load_checkpoint(tiny_judge)
    a = evaluate(vae, judge, target=parse_target("class:1"), samples=200, seed=3, batch_size=64)
    b = evaluate(vae, judge, target=parse_target("class:1"), samples=200, seed=3, batch_size=64)
    c = evaluate(vae, judge, target=parse_target("class:1"), samples=200, seed=4, batch_size=64)
    for r in (a, b):  # the evaluation's own time and memory are measured, not computed
        for key in ("eval_seconds", "eval_peak_rss_mb"):
            r["cost"].pop(key)
    assert a == b
    assert a["utility"]["fid"] != c["utility"]["fid"]
    assert a["utility"]["retain_elbo"] != c["utility"]["retain_elbo"]


def test_a_memo_judges_the_reference_once_and_changes_no_number(
    tiny_vae, tiny_judge, tmp_path, monkeypatch
):
    """`unlearn compare` scores every row of a seed against one retraining: with a memo its
    samples are judged once, every number is what it is without one, and another reference
    is judged afresh."""
    from unlearn_cli.workflows import evaluate as evaluation

    calls = []
    real = evaluation.judge_outputs

    def counted(judge, images, batch_size):
        calls.append(images)
        return real(judge, images, batch_size)

    monkeypatch.setattr(evaluation, "judge_outputs", counted)
    vae, judge = load_checkpoint(tiny_vae), load_checkpoint(tiny_judge)
    reference = load_checkpoint(tiny_vae)  # a saved VAE of the same data: its own reference
    other = load_checkpoint(save_checkpoint(variant_model(vae), tmp_path / "other.safetensors"))
    options = {"target": parse_target("class:1"), "samples": 200, "batch_size": 64}
    memo = evaluation.Memo()
    runs = []
    for ref in (reference, reference, other):
        calls.clear()
        runs.append(evaluate(vae, judge, reference=ref, memo=memo, **options))
        runs[-1]["judged"] = len(calls)  # held-out images, the model's samples, the reference's
    alone = [evaluate(vae, judge, reference=ref, **options) for ref in (reference, other)]
    assert [r.pop("judged") for r in runs] == [3, 2, 3]  # the second row reuses the first's
    for r in (*runs, *alone):
        for key in ("eval_seconds", "eval_peak_rss_mb"):
            r["cost"].pop(key)
    assert runs[0] == runs[1] == alone[0] and runs[2] == alone[1]
    assert alone[0]["utility"]["fid_reference"] == pytest.approx(0, abs=1e-3)  # its own samples
    assert alone[1]["utility"]["fid_reference"] > 0.01  # another model's samples: no collision


def variant_model(ckpt: Checkpoint) -> Checkpoint:
    """`ckpt` with its decoder's weights nudged: another model of the same data."""
    changed = dataclasses.replace(ckpt, model=copy.deepcopy(ckpt.model))
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in changed.model.decoder.parameters():
            p.add_(0.5 * torch.randn(p.shape, generator=generator))
    return changed


def test_without_judge_only_what_needs_none(tiny_vae):
    r = evaluate(load_checkpoint(tiny_vae), None, target=parse_target("class:3"), samples=50)
    assert r["judge"] is None and r["target"] == "class:3"
    assert r["privacy"]["fratio"] is None and r["utility"]["is"] is None
    assert r["utility"]["fid"] is None and r["utility"]["forget_elbo"] > 0


def test_lineage_names_the_target_and_the_cost(tiny_vae, tmp_path):
    path = variant(
        tiny_vae,
        tmp_path / "forgot1.safetensors",
        lineage=[forget_entry([{"id": "r1", "class": [1]}], seconds=2.25)],
    )
    r = evaluate(load_checkpoint(path), None, samples=50)
    assert r["target"] == "class:1"
    made = {k: r["cost"][k] for k in ("seconds", "operation", "device", "peak_rss_mb")}
    assert made == {  # an entry written before peak memory was recorded: None
        "seconds": 2.25, "operation": "forget:surgery", "device": "cpu", "peak_rss_mb": None
    }  # fmt: skip
    assert r["utility"]["forget_elbo"] is not None
    overridden = evaluate(load_checkpoint(path), None, target=parse_target("class:3"), samples=50)
    assert overridden["target"] == "class:3"


def test_several_forget_operations_add_up(tiny_vae, tmp_path):
    lineage = [
        forget_entry([{"id": "a", "class": [1]}], seconds=1.0),
        forget_entry([{"id": "b", "class": [8]}], seconds=2.0),
    ]
    r = evaluate(
        load_checkpoint(variant(tiny_vae, tmp_path / "v.safetensors", lineage=lineage)),
        None,
        samples=50,
    )
    assert r["target"] == "class:1,8"
    assert r["cost"]["seconds"] == 3.0


def test_fratio_counts_every_forgotten_class(tiny_vae, tiny_judge):
    vae, judge = load_checkpoint(tiny_vae), load_checkpoint(tiny_judge)
    one = evaluate(vae, judge, target=parse_target("class:1"), samples=100)["privacy"]["fratio"]
    eight = evaluate(vae, judge, target=parse_target("class:8"), samples=100)["privacy"]["fratio"]
    both = evaluate(vae, judge, target=parse_target("class:1,8"), samples=100)["privacy"]["fratio"]
    assert both == pytest.approx(one + eight)


def test_sample_forgetting_scores_membership_inference(
    tiny_vae, tiny_judge, forgotten_ids, tmp_path
):
    requests = [{"id": "r1", "indices": forgotten_ids}]
    forgot = variant(tiny_vae, tmp_path / "forgot.safetensors", lineage=[forget_entry(requests)])
    spec = load_checkpoint(tiny_vae).dataset
    retrained = variant(
        tiny_vae,
        tmp_path / "retrained.safetensors",
        dataset=dataclasses.replace(spec, exclude=tuple(requests)),
    )
    r = evaluate(
        load_checkpoint(forgot),
        load_checkpoint(tiny_judge),
        samples=50,
        reference=load_checkpoint(retrained),
    )
    assert r["target"] == "samples"
    assert r["privacy"]["fratio"] is None  # no classifier can tell individual samples
    assert 0.0 <= r["privacy"]["mia_auc"] <= 1.0
    # same weights, same seed, same members and non-members: the same AUC
    assert r["privacy"]["mia_auc_reference"] == r["privacy"]["mia_auc"]
    assert r["utility"]["is"] is not None
    ref = evaluate(load_checkpoint(retrained), None, samples=50)
    assert ref["target"] == "samples" and ref["cost"]["operation"] == "retrain"


def test_the_reference_is_attacked_with_its_own_elbos(
    tiny_vae, tiny_spec, tiny_vae_config, forgotten_ids, tmp_path
):
    """A reference that differs from the model gets its own AUC: the same attack, the same
    members and non-members and weights, its own negative ELBOs."""
    from unlearn_cli.data.spec import load_split
    from unlearn_cli.engine.train import TrainConfig, train_vae
    from unlearn_cli.metrics import mia_auc, negative_elbo
    from unlearn_cli.metrics.privacy import class_mix_weights
    from unlearn_cli.workflows.image_sets import DataImages

    requests = [{"id": "r1", "indices": forgotten_ids}]
    forgot = variant(tiny_vae, tmp_path / "forgot.safetensors", lineage=[forget_entry(requests)])
    excluded = dataclasses.replace(tiny_spec, exclude=tuple(requests))
    ref = train_vae(excluded, tiny_vae_config, TrainConfig(epochs=2, batch_size=32, seed=1), CPU)
    ref = load_checkpoint(save_checkpoint(ref, tmp_path / "ref.safetensors"))
    r = evaluate(load_checkpoint(forgot), None, samples=20, reference=ref)["privacy"]
    train, test = load_split(tiny_spec), load_split(tiny_spec, split="test")
    members = train.subset(torch.isin(train.ids, torch.tensor(forgotten_ids)).nonzero()[:, 0])
    same_digits = torch.isin(test.labels, members.labels.unique())  # the non-members
    weights = class_mix_weights(members.labels, test.labels[same_digits])

    def nelbo(data):  # as evaluate() reads them: batches of 500, noise seeded with 0
        return negative_elbo(ref.model, DataImages(data, 500, CPU), 500, 0)

    by_hand = mia_auc(-nelbo(members), -nelbo(test)[same_digits], weights)
    assert r["mia_auc_reference"] == pytest.approx(by_hand, abs=1e-9)
    assert r["mia_auc_reference"] != r["mia_auc"]


def test_membership_inference_sees_memorised_samples(tmp_path):
    """A VAE trained on a handful of samples for many epochs remembers them: AUC near 1."""
    from unlearn_cli.data.spec import DatasetSpec, load_split
    from unlearn_cli.engine.train import TrainConfig, train_vae
    from unlearn_cli.models import VAEConfig

    spec = DatasetSpec(name="mnist", classes=(1, 3, 8), limit=300)
    data = load_split(spec)
    few = data.subset(torch.arange(10))
    cfg = VAEConfig(arch="mlp", channels=1, image_size=28, hidden=(128,), latent_dim=4)
    ckpt = train_vae(
        spec, cfg, TrainConfig(epochs=400, batch_size=10, seed=0), torch.device("cpu"), data=few
    )
    ckpt.lineage = [forget_entry([{"id": "r", "indices": few.ids.tolist()}])]
    model = load_checkpoint(save_checkpoint(ckpt, tmp_path / "m.safetensors"))
    r = evaluate(model, None, samples=10)
    assert r["privacy"]["mia_auc"] > 0.9
    assert r["privacy"]["mia_tpr_at_1fpr"] > 0.1  # 10x chance: members stand out at 1% FPR
    assert r["privacy"]["mia_calibrated_auc"] is None  # no shadow, no calibrated attack
    # a shadow trained the same way on 10 other samples never saw the members
    other = data.subset(torch.arange(10, 20))
    shadow = train_vae(
        spec, cfg, TrainConfig(epochs=400, batch_size=10, seed=1), torch.device("cpu"), data=other
    )
    shadow = load_checkpoint(save_checkpoint(shadow, tmp_path / "shadow.safetensors"))
    r = evaluate(model, None, samples=10, shadows=[shadow])
    assert r["privacy"]["mia_calibrated_auc"] > 0.9
    assert r["privacy"]["mia_calibrated_tpr_at_1fpr"] > 0.1
    # the model as its own shadow: every calibrated score is 0, so the attack learns nothing
    r = evaluate(model, None, samples=10, shadows=[model])
    assert r["privacy"]["mia_calibrated_auc"] == pytest.approx(0.5)
    assert r["privacy"]["mia_calibrated_tpr_at_1fpr"] == 0.0


def test_retrain_reference_reads_its_exclusions(tiny_vae, tmp_path):
    spec = load_checkpoint(tiny_vae).dataset
    path = variant(
        tiny_vae,
        tmp_path / "retrain.safetensors",
        dataset=dataclasses.replace(spec, exclude=({"id": "r1", "class": [1]},)),
    )
    r = evaluate(load_checkpoint(path), None, samples=50)
    assert r["target"] == "class:1" and r["cost"]["operation"] == "retrain"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("class:1", "class:1"),
        ("class:8,1", "class:1,8"),
        ("attr:Male", "attribute:Male"),
        ("attribute:Male,Smiling", "attribute:Male,Smiling"),
        ("samples", "samples"),
    ],
)
def test_parse_target(text, expected):
    assert str(parse_target(text)) == expected


@pytest.mark.parametrize("text", ["", "class", "class:", "digit:1", "attr:", "samples:3"])
def test_parse_target_rejects(text):
    with pytest.raises(UsageError, match="class:DIGIT"):
        parse_target(text)


def test_target_must_fit_the_model(tiny_vae):
    vae = load_checkpoint(tiny_vae)
    for target, message in [
        ("class:2", "never learned digit 2"),
        ("class:one", "never learned digit one"),  # a name is a folder's class, not a digit
        ("attr:Male", "no attributes"),
        ("class:1,3,8", "nothing|no class"),
        ("samples", "no forgotten"),
    ]:
        with pytest.raises(UsageError, match=message):
            evaluate(vae, None, target=parse_target(target), samples=10)


def test_gates():
    result = {
        "privacy": {"fratio": 0.2, "mia_auc": None, "mia_auc_reference": None},
        "utility": {"is": 1.8, "fid": 3.0, "retain_elbo": 90.0, "forget_elbo": 120.0},
    }
    assert gates(result, {}) == []
    inclusive = {"max_fratio": 0.2, "max_fid": 3.0, "min_is": 1.8, "min_precision": None}
    assert gates(result, inclusive) == []
    failed = gates(result, {"max_fratio": 0.1, "max_fid": 5.0, "min_is": 2.0})
    assert failed == [("max_fratio", "0.1: fratio is 0.2"), ("min_is", "2: IS is 1.8")]
    assert gates(result, {"max_mia_auc": 0.6}) == [
        ("max_mia_auc", "0.6: MIA AUC was not measured (it needs forgotten individual samples)")
    ]


def test_gates_that_need_a_judge():
    # evaluate refuses these without --judge; the MIA and pixel gates run without one
    assert set(JUDGED) == {"max_fratio", "min_is", "max_fid", "min_precision"}
    assert all(("judge" in gate.needs) == gate.judged for gate in GATES.values())


def bar_result(**model) -> dict:
    """An evaluation of a model against a scored reference, with the model's values overridden."""
    values = {"fratio": 0.13, "precision": 0.6, "fid": 5.0, "retain_elbo": 98.0, "seconds": 3.0}
    values.update(model)
    return {
        "privacy": {"fratio": values["fratio"]},
        "utility": {k: values[k] for k in ("precision", "fid", "retain_elbo")},
        "cost": {"seconds": values["seconds"]},
        "reference": {
            "fratio": 0.12, "precision": 0.62, "fid": 4.5, "retain_elbo": 97.0, "seconds": 100.0
        },
    }  # fmt: skip


def test_like_reference_holds_the_model_to_the_bar():
    result = bar_result()  # every value inside the bar
    result["like_reference"] = like_reference(result)
    assert [c["metric"] for c in result["like_reference"]] == [
        "fratio", "precision", "fid", "retain_elbo", "seconds"
    ]  # fmt: skip
    assert all(c["passed"] for c in result["like_reference"])
    assert reference_failures(result) == []
    fratio, precision, fid, elbo, seconds = (c["limit"] for c in result["like_reference"])
    assert fratio == pytest.approx(0.14) and precision == pytest.approx(0.558)
    assert fid == pytest.approx(5.4) and elbo == pytest.approx(106.7) and seconds == 10.0

    result = bar_result(fratio=0.15, precision=0.55, fid=5.5, retain_elbo=107.0, seconds=11.0)
    result["like_reference"] = like_reference(result)
    assert not any(c["passed"] for c in result["like_reference"])
    assert reference_failures(result) == [
        "fratio 0.15 is over 0.14 (the reference's 0.12 + 0.02)",
        "precision 0.55 is under 0.558 (0.9 x the reference's 0.62)",
        "FID 5.5 is over 5.4 (1.2 x the reference's 4.5)",
        "retain -ELBO 107 is over 106.7 (1.1 x the reference's 97)",
        "time (s) 11 is over 10 (10% of the reference's training, 100)",
    ]


def test_like_reference_fails_what_was_not_measured():
    result = bar_result(precision=None)  # too few samples for a k-NN ball
    result["like_reference"] = like_reference(result)
    check = result["like_reference"][1]
    assert check["passed"] is None and check["limit"] is None
    assert reference_failures(result) == ["precision was not measured for both models"]


# The command


def run(cli, model, *flags, judge=None, samples=200):
    """`unlearn evaluate MODEL --samples N --device cpu FLAGS... [--judge JUDGE]`."""
    judged = ("--judge", judge) if judge is not None else ()
    return cli("evaluate", model, "--samples", samples, "--device", "cpu", *flags, *judged)


def test_json_is_the_only_output(cli, tiny_vae, tiny_judge):
    data = parse_json(run(cli, tiny_vae, "--target", "class:1", "--json", judge=tiny_judge))
    assert data["target"] == "class:1" and data["samples"] == 200
    assert set(data) >= {"privacy", "utility", "cost", "judge"}


def test_shadow_models_add_the_calibrated_attack(
    cli, tiny_vae, tiny_judge, forgotten_ids, tmp_path
):
    requests = [{"id": "r1", "indices": forgotten_ids}]
    forgot = variant(tiny_vae, tmp_path / "forgot.safetensors", lineage=[forget_entry(requests)])
    data = parse_json(run(cli, forgot, "--shadow", tiny_vae, "--shadow", tiny_vae, "--json"))
    privacy = data["privacy"]
    assert 0.0 <= privacy["mia_calibrated_auc"] <= 1.0
    assert 0.0 <= privacy["mia_calibrated_tpr_at_1fpr"] <= 1.0
    r = run(cli, forgot, "--shadow", tiny_judge)
    assert r.exit_code == 2 and "judge" in r.stderr and len(stderr_lines(r)) == 1


def test_table_groups_privacy_utility_cost(cli, tiny_vae, tiny_judge):
    r = run(cli, tiny_vae, "--target", "class:1", judge=tiny_judge)
    assert r.exit_code == 0, r.stderr
    for word in ("PRIVACY", "UTILITY", "COST", "fratio", "FID", "IS", "ELBO"):
        assert word in r.stdout
    assert r.stdout.index("PRIVACY") < r.stdout.index("UTILITY") < r.stdout.index("COST")


def test_failed_gates_exit_3_after_printing(cli, tiny_vae, tiny_judge):
    assert EXIT_GATE == 3
    gated = ("--max-fid", "-1", "--min-is", "1000", "--max-fratio", "1")
    r = run(cli, tiny_vae, "--target", "class:1", "--json", *gated, judge=tiny_judge)
    assert r.exit_code == EXIT_GATE
    assert json.loads(r.stdout)["target"] == "class:1"  # the JSON still printed
    failed = [line for line in stderr_lines(r) if line.startswith("gate failed:")]
    assert len(failed) == 2  # one line per failed gate, in table order
    assert "--min-is 1000: IS is" in failed[0] and "--max-fid -1: FID is" in failed[1]


def test_passing_gates_exit_0(cli, tiny_vae, tiny_judge):
    gated = ("--max-fratio", "1", "--min-is", "1", "--max-fid", "1e9")
    parse_json(run(cli, tiny_vae, "--target", "class:1", "--json", *gated, judge=tiny_judge))


def test_a_reference_is_scored_beside_the_model(cli, tiny_vae, tiny_judge):
    """The model as its own reference: every score matches, so only the time check (its
    training is not 10% of itself) fails the gate."""
    flags = ("--target", "class:1", "--reference", tiny_vae, "--like-reference", "--json")
    r = run(cli, tiny_vae, *flags, judge=tiny_judge)
    assert r.exit_code == EXIT_GATE
    data = json.loads(r.stdout)
    ref = data["reference"]
    assert ref["path"] == str(tiny_vae) and ref["operation"] == "train"
    assert ref["fratio"] == data["privacy"]["fratio"] and ref["fid"] == data["utility"]["fid"]
    for key in ("is", "precision", "recall", "retain_elbo", "forget_elbo"):
        assert ref[key] == data["utility"][key], key
    passed = {c["metric"]: c["passed"] for c in data["like_reference"]}
    assert passed == {
        "fratio": True, "precision": True, "fid": True, "retain_elbo": True, "seconds": False
    }  # fmt: skip
    failed = [line for line in stderr_lines(r) if line.startswith("gate failed:")]
    assert len(failed) == 1 and "--like-reference: time (s)" in failed[0]
    table = run(cli, tiny_vae, "--target", "class:1", "--reference", tiny_vae, judge=tiny_judge)
    assert table.exit_code == 0, table.stderr  # without the gate, the verdict is only shown
    flat = " ".join(table.stdout.split())
    assert "reference" in flat and "misses --like-reference: time (s)" in flat


def test_like_reference_needs_a_judge_and_a_reference(cli, tiny_vae, tiny_judge):
    for flags in (("--reference", tiny_vae), ()):
        r = run(cli, tiny_vae, "--target", "class:1", "--like-reference", *flags)
        assert r.exit_code == EXIT_USAGE and len(stderr_lines(r)) == 1
        assert "--judge" in r.stderr and "--reference" in r.stderr
    r = run(cli, tiny_vae, "--target", "class:1", "--like-reference", judge=tiny_judge)
    assert r.exit_code == EXIT_USAGE and "--reference" in r.stderr


def test_gate_on_an_unmeasured_metric_fails(cli, tiny_vae):
    r = run(cli, tiny_vae, "--json", "--max-mia-auc", "0.6", samples=10)
    assert r.exit_code == EXIT_GATE
    assert "not measured" in r.stderr
    r = run(cli, tiny_vae, "--max-fratio", "0.1", samples=10)
    assert r.exit_code == EXIT_USAGE and "needs --judge" in r.stderr


def test_without_judge_says_what_is_missing(cli, tiny_vae):
    r = run(cli, tiny_vae, "--json", samples=10)
    data = parse_json(r)
    assert data["privacy"]["fratio"] is None and data["utility"]["fid"] is None
    assert "need --judge" in r.stderr
    assert "unlearn train --model judge --classes 1,3,8" in r.stderr


def test_weak_judge_warns_loudly(cli, tiny_vae, tiny_judge, tmp_path):
    assert load_checkpoint(tiny_judge).metrics["test_accuracy"] < 0.95
    weak = run(cli, tiny_vae, "--target", "class:1", "--json", judge=tiny_judge, samples=20)
    assert "warning: judge" in weak.stderr and "below 95%" in weak.stderr
    good = variant(tiny_judge, tmp_path / "good.safetensors", metrics={"test_accuracy": 0.99})
    r = run(cli, tiny_vae, "--target", "class:1", "--json", judge=good, samples=20)
    assert parse_json(r)["judge"]["test_accuracy"] == 0.99
    assert "warning:" not in r.stderr


def test_judge_of_other_classes_is_exit_2(cli, tiny_vae, tmp_path):
    from unlearn_cli.data.spec import DatasetSpec
    from unlearn_cli.models import JudgeConfig, build_judge

    cfg = JudgeConfig(arch="allcnn", channels=1, image_size=28, num_classes=2, width=8)
    spec = DatasetSpec(name="mnist", classes=(1, 3))
    judge = Checkpoint("judge", build_judge(cfg), cfg.to_dict(), spec, training={})
    path = save_checkpoint(judge, tmp_path / "judge13.safetensors")
    r = run(cli, tiny_vae, judge=path, samples=10)
    assert r.exit_code == EXIT_USAGE
    assert len(stderr_lines(r)) == 1 and "digits 1,3 apart" in r.stderr
    assert "--classes 1,3,8" in r.stderr and r.stdout == ""


def test_vae_as_judge_is_exit_2(cli, tiny_vae):
    r = run(cli, tiny_vae, judge=tiny_vae, samples=10)
    assert r.exit_code == EXIT_USAGE and len(stderr_lines(r)) == 1
    assert "judge" in r.stderr


def test_bad_target_is_exit_2_with_a_hint(cli, tiny_vae):
    r = run(cli, tiny_vae, "--target", "clas:1")
    assert r.exit_code == EXIT_USAGE and len(stderr_lines(r)) == 1
    assert "class:DIGIT" in r.stderr


def test_grid_png(cli, tiny_vae, tmp_path):
    from PIL import Image

    grid, pair = tmp_path / "grid.png", tmp_path / "pair.png"
    parse_json(run(cli, tiny_vae, "--json", "--grid", grid, samples=10))
    side = 8 * 28 + 9 * 2  # 8 images of 28 pixels, 2 pixels of padding around each
    with Image.open(grid) as img:
        assert img.size == (side, side) and img.mode == "L"
        single = torch.from_numpy(np.asarray(img).copy())
    parse_json(run(cli, tiny_vae, "--json", "--grid", pair, "--compare-grid", tiny_vae, samples=10))
    label = 16  # a white strip over the panels names each one
    with Image.open(pair) as img:
        assert img.size == (2 * side + 16, label + side)
        pixels = torch.from_numpy(np.asarray(img).copy())
    # the same model before and after: both halves are the grid above, from the same latents
    assert torch.equal(pixels[label:, :side], single)
    assert torch.equal(pixels[label:, side + 16 :], single)
    names = pixels[:label]
    assert (names < 128).any() and (names[:, side : side + 16] == 255).all()  # text, not between
    assert not list(tmp_path.glob(".*.tmp"))  # written atomically, nothing left behind
    strip = tmp_path / "strip.png"
    flags = ("--grid", strip, "--compare-grid", tiny_vae, "--reference", tiny_vae)
    parse_json(run(cli, tiny_vae, "--json", *flags, samples=10))
    with Image.open(strip) as img:  # before | after | reference
        assert img.size == (3 * side + 2 * 16, label + side)
        pixels = torch.from_numpy(np.asarray(img).copy())
    assert torch.equal(pixels[label:, 2 * (side + 16) :], single)
    for panel in range(3):  # each panel has its name over it
        assert (pixels[:label, panel * (side + 16) : panel * (side + 16) + side] < 128).any()


def test_compare_grid_needs_grid(cli, tiny_vae):
    r = run(cli, tiny_vae, "--compare-grid", tiny_vae)
    assert r.exit_code == EXIT_USAGE and "--grid" in r.stderr


def test_data_dir_overrides_where_the_data_lives(cli, tiny_vae, tmp_path):
    from unlearn_cli.data.mnist import copy_embedded_to

    copy_embedded_to(tmp_path / "mnist")
    embedded = parse_json(run(cli, tiny_vae, "--json", samples=10))
    copied = parse_json(run(cli, tiny_vae, "--json", "--data-dir", tmp_path / "mnist", samples=10))
    assert copied["utility"] == embedded["utility"]
    r = run(cli, tiny_vae, "--data-dir", tmp_path / "nowhere", samples=10)
    assert r.exit_code == EXIT_USAGE and "--data-dir" in r.stderr


# CelebA: an attribute target and its judge


@pytest.fixture(scope="module")
def celeba(tmp_path_factory):
    """A generated CelebA of 64 images, an untrained tiny conv VAE that forgot `Male`, and
    untrained ResNet18 judges of `Male` and of `Smiling`."""
    from celeba_fixture import make_celeba

    from unlearn_cli.data.spec import DatasetSpec
    from unlearn_cli.models import VAE, JudgeConfig, VAEConfig, build_judge

    tmp = tmp_path_factory.mktemp("celeba")
    root = str(make_celeba(tmp / "data", n=64))
    torch.manual_seed(0)
    vcfg = VAEConfig(arch="conv", channels=3, image_size=64, hidden=(4, 8), latent_dim=4)
    vae = Checkpoint(
        kind="vae",
        model=VAE.from_config(vcfg),
        model_config=vcfg.to_dict(),
        dataset=DatasetSpec(name="celeba", root=root),
        training={"device": "cpu"},
        lineage=[forget_entry([{"id": "r", "attribute": ["Male"]}])],
    )
    paths = {"root": root, "vae": save_checkpoint(vae, tmp / "vae.safetensors")}
    for attribute in ("Male", "Smiling"):
        jcfg = JudgeConfig.from_name("celeba")
        judge = Checkpoint(
            kind="judge",
            model=build_judge(jcfg),
            model_config=jcfg.to_dict(),
            dataset=DatasetSpec(name="celeba", root=root, attribute=attribute),
            training={},
            metrics={"test_accuracy": 0.99},
        )
        paths[attribute] = save_checkpoint(judge, tmp / f"judge-{attribute}.safetensors")
    return paths


def test_celeba_attribute_target(celeba):
    r = evaluate(
        load_checkpoint(celeba["vae"]), load_checkpoint(celeba["Male"]), samples=8, batch_size=8
    )
    assert r["target"] == "attribute:Male"
    assert 0.0 <= r["privacy"]["fratio"] <= 1.0 and r["utility"]["fid"] >= 0.0
    assert r["cost"]["operation"] == "forget:surgery"


def test_celeba_judge_of_another_attribute_is_exit_2(cli, celeba):
    r = cli("evaluate", celeba["vae"], "--judge", celeba["Smiling"], "--samples", "8")
    assert r.exit_code == EXIT_USAGE and len(stderr_lines(r)) == 1
    assert "classifies Smiling" in r.stderr and "attribute:Male" in r.stderr


def test_celeba_class_target_is_exit_2(cli, celeba):
    r = cli("evaluate", celeba["vae"], "--target", "class:1", "--samples", "8")
    assert r.exit_code == EXIT_USAGE and "attribute:NAME" in r.stderr


def test_celeba_several_attributes_need_one_judge_each(celeba, tmp_path):
    lineage = [
        forget_entry([{"id": "a", "attribute": ["Male"]}]),
        forget_entry([{"id": "b", "attribute": ["Smiling"]}]),
    ]
    path = variant(celeba["vae"], tmp_path / "two.safetensors", lineage=lineage)
    r = evaluate(load_checkpoint(path), None, samples=4, batch_size=8)
    assert r["target"] == "attribute:Male,Smiling" and r["utility"]["forget_elbo"] is not None
    with pytest.raises(UsageError, match="one attribute"):
        evaluate(load_checkpoint(path), load_checkpoint(celeba["Male"]), samples=4)


def test_compare_grid_of_another_shape_is_exit_2(cli, tiny_vae, celeba, tmp_path):
    r = run(cli, tiny_vae, "--grid", tmp_path / "g.png", "--compare-grid", celeba["vae"])
    assert r.exit_code == EXIT_USAGE and "latent size or image shape" in r.stderr
    assert not (tmp_path / "g.png").exists()


def test_celeba_forgotten_files_score_membership_inference(celeba, tmp_path):
    from celeba_fixture import file_name

    requests = [{"id": "f", "files": [file_name(0), file_name(3)]}]
    path = variant(celeba["vae"], tmp_path / "files.safetensors", lineage=[forget_entry(requests)])
    r = evaluate(load_checkpoint(path), None, samples=4, batch_size=8)
    assert r["target"] == "samples" and 0.0 <= r["privacy"]["mia_auc"] <= 1.0


def test_an_original_model_is_scored_against_a_manifest(cli, tiny_vae, tmp_path):
    """An original model's lineage names no samples; --manifest names them, so its MIA AUC
    can be compared with its unlearned child's."""
    from unlearn_cli.data.requests import training_set
    from unlearn_cli.engine.checkpoint import load_checkpoint

    data = training_set(load_checkpoint(tiny_vae).dataset)
    ids = data.ids[data.labels == 3][:5].tolist()
    manifest = tmp_path / "r.yaml"
    manifest.write_text(f"requests:\n  - id: r1\n    indices: {ids}\n")
    refused = cli("evaluate", tiny_vae, "--target", "samples")
    assert refused.exit_code == 2 and "in a manifest" in refused.stderr
    result = parse_json(cli("evaluate", tiny_vae, "--manifest", manifest, "--json"))
    assert result["target"] == "samples"
    assert 0.0 <= result["privacy"]["mia_auc"] <= 1.0
