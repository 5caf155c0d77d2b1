"""k-NN precision and recall: against a brute-force reference, on stand-in generators whose
answer is known, and on a wrecked model next to its retrained reference."""

from __future__ import annotations

import itertools

import pytest
import torch

from unlearn_cli.metrics.fidelity import (
    coverage_share,
    kth_neighbour_radii,
    pixel_features,
    precision_recall,
)


def brute_force(fake: torch.Tensor, real: torch.Tensor, k: int) -> tuple[float, float]:
    """The definition, one pair of points at a time."""

    def radius(points, i):
        d = sorted(float((points[i] - points[j]).norm()) for j in range(len(points)) if j != i)
        return d[k - 1]

    def share(points, centres):
        radii = [radius(centres, j) for j in range(len(centres))]
        inside = [any(float((p - c).norm()) <= r for c, r in zip(centres, radii)) for p in points]
        return sum(inside) / len(points)

    n = min(len(fake), len(real))
    return share(fake, real[:n]), share(real, fake[:n])


@pytest.mark.parametrize("n_fake, n_real", [(40, 40), (60, 30), (25, 50)])
def test_precision_recall_equal_the_definition(n_fake, n_real):
    g = torch.Generator().manual_seed(n_fake)
    real = torch.randn(n_real, 5, generator=g)
    fake = torch.randn(n_fake, 5, generator=g) * 1.3 + 0.4  # overlapping, not identical
    fast = precision_recall(fake, real, k=3)
    assert fast == pytest.approx(brute_force(fake, real, 3), abs=1e-12)
    assert min(fast) < 0.95  # a case where the answer is not trivially 1


def test_radii_skip_the_point_itself():
    points = torch.tensor([[0.0], [1.0], [3.0], [6.0]])
    assert kth_neighbour_radii(points, k=1).tolist() == [1.0, 1.0, 2.0, 3.0]
    assert kth_neighbour_radii(points, k=2).tolist() == [3.0, 2.0, 3.0, 5.0]
    with pytest.raises(ValueError, match="more than k=4"):
        kth_neighbour_radii(points, k=4)


def test_chunks_do_not_change_the_answer(monkeypatch):
    import unlearn_cli.metrics.fidelity as fidelity

    g = torch.Generator().manual_seed(1)
    real, fake = torch.randn(300, 8, generator=g), torch.randn(300, 8, generator=g) + 0.5
    whole = precision_recall(fake, real)
    monkeypatch.setattr(fidelity, "CHUNK", 7)
    assert precision_recall(fake, real) == whole


@pytest.fixture(scope="module")
def real_features(tiny_judge, tiny_spec):
    """Judge features of held-out retained images (3s and 8s), in two halves."""
    from unlearn_cli.data.spec import load_split
    from unlearn_cli.engine.checkpoint import load_checkpoint
    from unlearn_cli.metrics import judge_outputs

    test = load_split(tiny_spec, split="test")
    images = torch.stack([test[i][0] for i in range(len(test)) if int(test[i][1]) != 1])
    judge = load_checkpoint(tiny_judge).model
    blob = torch.ones_like(images[:1])  # a saturated white image: no digit at all
    _, features = judge_outputs(judge, torch.cat([images, blob]), 100)
    half = (len(features) - 1) // 2
    return features[:half], features[half : 2 * half], features[-1:]


def test_real_images_have_precision_near_one(real_features):
    real, other_real, _ = real_features
    precision, recall = precision_recall(other_real, real)
    assert precision > 0.9 and recall > 0.9


def test_a_blob_in_30_percent_of_samples_costs_30_percent_precision(real_features):
    real, other_real, blob = real_features
    n = len(other_real)
    n_blob = round(0.3 * n)
    fake = torch.cat([other_real[: n - n_blob], blob.expand(n_blob, -1)])
    precision, _ = precision_recall(fake, real)
    manifold = real[:n], kth_neighbour_radii(real[:n])
    clean = coverage_share(other_real[: n - n_blob], *manifold)
    assert precision == pytest.approx(clean * (n - n_blob) / n, abs=1e-9)  # no blob counts
    assert 0.6 < precision < 0.72


def test_ascent_has_far_lower_precision_than_retraining(small_models):
    """Gradient ascent wrecks the generator; precision sees it next to its retrained
    reference, while fratio calls the wreck as good as retraining."""
    from unlearn_cli.data.requests import Request
    from unlearn_cli.methods import configure, get_method
    from unlearn_cli.workflows.evaluate import evaluate
    from unlearn_cli.workflows.forget import plan_forget, run_forget

    original, judge = small_models
    plan = plan_forget(original, [Request("ones", "class", (1,))])
    results = {}
    for name, options in (("ascent", {"lr": 1e-2}), ("retrain", {})):
        method = get_method(name)
        cfg = configure(method, original, options)
        child = run_forget(original, plan, method, cfg, torch.device("cpu"))
        results[name] = evaluate(child, judge, samples=500, batch_size=250)
    wrecked, retrained = results["ascent"]["utility"], results["retrain"]["utility"]
    assert retrained["precision"] > 0.5
    assert wrecked["precision"] < 0.5 * retrained["precision"]
    assert results["ascent"]["privacy"]["fratio"] <= results["retrain"]["privacy"]["fratio"] + 0.05


def test_all_pairs_brute_force_agrees_on_ties():
    """Points exactly on a ball's boundary count as inside, in both implementations."""
    grid = torch.tensor(list(itertools.product([0.0, 1.0, 2.0], repeat=2)))
    assert precision_recall(grid, grid, k=2) == brute_force(grid, grid, 2) == (1.0, 1.0)


def test_pixel_features_pool_only_large_images():
    mnist = torch.rand(2, 1, 28, 28)
    assert torch.equal(pixel_features(mnist), mnist.flatten(1))
    celeba = torch.rand(2, 3, 64, 64)
    pooled = pixel_features(celeba)
    assert pooled.shape == (2, 3 * 16 * 16)
    torch.testing.assert_close(pooled, torch.nn.functional.avg_pool2d(celeba, 4).flatten(1))


def test_pixel_precision_sees_a_blob_the_judge_may_not(tiny_spec):
    """In pixel space, 30% saturated blobs cost 30% precision: no judge is involved."""
    from unlearn_cli.data.spec import load_split

    test = load_split(tiny_spec, split="test")
    images = test.images[test.labels != 1].float() / 255  # (N, 1, 28, 28) 3s and 8s
    half = len(images) // 2
    real, fake = pixel_features(images[:half]), pixel_features(images[half : 2 * half])
    n_blob = round(0.3 * half)
    fake[half - n_blob :] = 1.0  # every pixel white
    precision, _ = precision_recall(fake, real)
    assert precision <= 0.7 + 1e-9 and precision > 0.55
