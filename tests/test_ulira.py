"""U-LiRA: the per-sample membership test against models retrained without the sample."""

from __future__ import annotations

import pytest
import torch

from unlearn_cli.metrics.ulira import STD_FLOOR, null, ulira, z_scores

CPU = torch.device("cpu")


def never_seen_of(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Losses (M,) and references (3, M) that give the never-seen samples z-scores `z`: the
    references 5, 7 and 9 (mean 7, standard deviation 2), the model 7 - 2 z."""
    refs = torch.tensor([5.0, 7.0, 9.0])[:, None].expand(3, len(z))  # (3, M)
    return 7.0 - 2.0 * z, refs


def test_z_scores_and_the_test_on_hand_made_numbers():
    refs = torch.tensor([[10.0, 20.0], [12.0, 20.0], [14.0, 26.0]])  # (K=3, N=2)
    mean, std = null(refs)
    assert mean.tolist() == [12.0, 22.0]
    assert std.tolist() == pytest.approx([2.0, 12**0.5])  # (4 + 0 + 4) / 2, (4 + 4 + 16) / 2
    forgotten = torch.tensor([8.0, 22.0])
    assert z_scores(forgotten, refs).tolist() == [2.0, 0.0]  # (12 - 8) / 2, (22 - 22) / 3.46
    z_never = torch.arange(20, dtype=torch.float64) / 10  # 0, 0.1, ..., 1.9
    result = ulira(forgotten, refs, *never_seen_of(z_never))
    # z 2 beats all 20 never-seen; z 0 ties the one at 0: (20 + 0.5) / 40
    assert result["ulira_auc"] == pytest.approx(20.5 / 40)
    # 5% of 20 may be past the threshold: it is the second highest, 1.8, and 1.9 is past it
    assert result["ulira_beyond_95"] == 0.5  # z 2 of the two
    assert result["ulira_told_apart"] == pytest.approx(0.5 - 0.05)
    assert result["ulira_tpr_at_1fpr"] == 0.5  # past 1.9, the highest: z 2 again


def test_the_null_needs_two_references_and_never_divides_by_zero():
    with pytest.raises(ValueError, match="2 references at least"):
        null(torch.ones(1, 5))
    same = torch.full((4, 3), 100.0)  # four retrainings that agree exactly
    assert null(same)[1].tolist() == [STD_FLOOR] * 3
    assert z_scores(torch.full((3,), 99.0), same).tolist() == pytest.approx([1 / STD_FLOOR] * 3)
    with pytest.raises(ValueError, match="3 losses against references of 4"):
        z_scores(torch.zeros(3), torch.zeros(2, 4))


def simulated(n: int, k: int, shift: float, seed: int = 0):
    """Losses of n samples under k references and a model: each sample its own mean and spread
    over retrainings, the model a draw of the same, `shift` spreads better."""
    g = torch.Generator().manual_seed(seed)
    mu = 100 + 20 * torch.rand(n, generator=g, dtype=torch.float64)  # (n,)
    sigma = 0.5 + 2 * torch.rand(n, generator=g, dtype=torch.float64)  # (n,)
    refs = mu + sigma * torch.randn(k, n, generator=g, dtype=torch.float64)  # (k, n)
    model = mu + sigma * (torch.randn(n, generator=g, dtype=torch.float64) - shift)  # (n,)
    return model, refs


def test_forgotten_samples_alike_never_seen_ones_are_not_told_apart():
    forgotten = simulated(2000, 8, shift=0.0, seed=1)
    never_seen = simulated(2000, 8, shift=0.0, seed=2)
    result = ulira(*forgotten, *never_seen)
    assert result["ulira_auc"] == pytest.approx(0.5, abs=0.03)
    assert result["ulira_beyond_95"] == pytest.approx(0.05, abs=0.02)
    assert result["ulira_told_apart"] < 0.02


def test_forgotten_samples_the_model_still_explains_better_are_told_apart():
    forgotten = simulated(500, 8, shift=8.0, seed=1)  # far better than any retraining
    never_seen = simulated(2000, 8, shift=0.0, seed=2)
    result = ulira(*forgotten, *never_seen)
    assert result["ulira_auc"] > 0.99
    assert result["ulira_beyond_95"] > 0.99 and result["ulira_told_apart"] > 0.94
    assert result["ulira_tpr_at_1fpr"] > 0.99


def test_never_seen_weights_decide_the_threshold():
    forgotten, refs = (
        torch.tensor([8.0, 22.0]),
        torch.tensor([[10.0, 20.0], [12.0, 20.0], [14.0, 26.0]]),
    )
    z_never = torch.tensor([0.0, 3.0])  # the never-seen sample at 3 would hide the forgotten 2
    plain = ulira(forgotten, refs, *never_seen_of(z_never))
    weighted = ulira(forgotten, refs, *never_seen_of(z_never), torch.tensor([1.0, 0.0]))
    assert plain["ulira_beyond_95"] == 0.0  # no never-seen may be past the threshold: 3
    assert weighted["ulira_beyond_95"] == 0.5  # weighing nothing, 3 sets no threshold
    assert weighted["ulira_auc"] == pytest.approx((1 + 0.5) / 2)  # against the 0 alone


@pytest.fixture(scope="module")
def retrained(tiny_vae):
    """The tiny model, a request for 5 of its training samples, and two references retrained
    without them (one epoch each, seeds 1 and 2)."""
    from unlearn_cli.data.requests import parse_requests, training_set
    from unlearn_cli.engine.checkpoint import load_checkpoint
    from unlearn_cli.methods import configure, get_method
    from unlearn_cli.workflows.forget import plan_forget, run_forget

    original = load_checkpoint(tiny_vae)
    ids = training_set(original.dataset).ids[[0, 10, 20, 30, 40]].tolist()
    requests = parse_requests({"requests": [{"id": "five", "indices": ids}]}, "test")
    plan, retrain = plan_forget(original, requests), get_method("retrain")
    references = []
    for seed in (1, 2):
        cfg = configure(retrain, original, {"epochs": 1, "seed": seed})
        ref = run_forget(original, plan, retrain, cfg, CPU)
        ref.sha256 = f"seed-{seed}"  # as if loaded from its own file
        references.append(ref)
    return original, requests, references


def test_the_workflow_scores_the_forgotten_and_never_seen_samples_of_the_model(retrained):
    """ulira_test on the tiny model is metrics.ulira on the losses computed by hand: the
    forgotten samples, and the test images of their digits in their mix."""
    from unlearn_cli.metrics import negative_elbo
    from unlearn_cli.workflows.image_sets import DataImages, eval_sets, subset
    from unlearn_cli.workflows.targets import Target
    from unlearn_cli.workflows.ulira import ulira_null, ulira_test

    original, requests, references = retrained
    result = ulira_test(original, ulira_null(references, original, requests, seed=3), CPU)
    sets = eval_sets(original.dataset, Target("samples"), requests, None, 3)
    never = subset(sets.test, sets.nonmember_mask)

    def nelbo(model, data):
        return negative_elbo(model, DataImages(data, 500, CPU), 500, seed=3)

    by_hand = ulira(
        nelbo(original.model, sets.members),
        torch.stack([nelbo(r.model, sets.members) for r in references]),
        nelbo(original.model, never),
        torch.stack([nelbo(r.model, never) for r in references]),
        sets.nonmember_weights,
    )
    assert {k: result[k] for k in by_hand} == pytest.approx(by_hand)
    assert (result["ulira_references"], result["ulira_forgotten"]) == (2, 5)
    assert result["ulira_never_seen"] == len(never) > 0


def test_the_workflow_refuses_references_that_cannot_be_the_null(retrained):
    from unlearn_cli.data.requests import parse_requests
    from unlearn_cli.errors import UsageError
    from unlearn_cli.workflows.ulira import ulira_null

    original, requests, references = retrained
    with pytest.raises(UsageError, match="2 retrained references at least"):
        ulira_null(references[:1], original, requests)
    with pytest.raises(UsageError, match="not retrained without the forgotten samples"):
        ulira_null([references[0], original], original, requests)  # the original saw them
    with pytest.raises(UsageError, match="the same file"):
        ulira_null([references[0], references[0]], original, requests)
    classes = parse_requests({"requests": [{"id": "c", "class": [1]}]}, "test")
    with pytest.raises(UsageError, match="name indices or files"):
        ulira_null(references, original, classes)
