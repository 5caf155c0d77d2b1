"""The metric functions: exact values on controlled inputs, equivalence with naive formulas,
and what torchmetrics does (and must not do) to our images on their way to the judge."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch
from torch import nn

from unlearn_cli.metrics import fid, fratio, inception_score, mia_auc, negative_elbo
from unlearn_cli.metrics.privacy import class_mix_weights


class LinearJudge(nn.Module):
    """A judge with known behaviour: features are 4 fixed linear maps of the pixels; logits
    either come from the features or are fixed (`logits`), whatever the image."""

    def __init__(self, logits: list[float] | None = None, image_pixels: int = 28 * 28):
        super().__init__()
        self.proj = nn.Linear(image_pixels, 4)
        self.fixed = None if logits is None else torch.tensor(logits)
        self.num_features = 4
        self.seen: list[torch.Tensor] = []  # every input, as received

    def features(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(x.clone())
        return self.proj(x.flatten(1))  # (B, C, H, W) -> (B, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fixed is not None:
            self.seen.append(x.clone())
            return self.fixed.expand(len(x), -1)  # (B, classes), the same for every image
        return self.features(x)[:, :3]  # (B, 3)


class BrightnessJudge(nn.Module):
    """Class 1 for bright images (mean pixel above 0.5), class 0 for dark ones."""

    def __init__(self):
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(()))  # metrics find the device from a parameter

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bright = (x.flatten(1).mean(1) > 0.5).float()  # (B,)
        return torch.stack([1 - bright, bright], dim=1) * 50  # (B, 2), near-certain


@pytest.fixture(scope="module")
def mnist138_test():
    """The first 300 MNIST test images of digits 1, 3 and 8, as floats in [0, 1]."""
    from unlearn_cli.data.spec import DatasetSpec, load_split

    data = load_split(DatasetSpec(name="mnist", classes=(1, 3, 8), limit=300), split="test")
    return data.images.float() / 255, data.labels


@pytest.fixture(scope="module")
def good_judge():
    """An AllCNN judge of digits 1, 3, 8 trained just enough to tell 1 from 3 and 8 (about 98%
    held-out accuracy, under a second of CPU; the shared tiny_judge is much weaker)."""
    from unlearn_cli.data.spec import DatasetSpec
    from unlearn_cli.engine.train import TrainConfig, train_judge
    from unlearn_cli.models import JudgeConfig

    spec = DatasetSpec(name="mnist", classes=(1, 3, 8), limit=1200)
    cfg = JudgeConfig(arch="allcnn", channels=1, image_size=28, num_classes=3, width=8)
    train = TrainConfig(epochs=2, batch_size=32, lr=2e-3, seed=0)
    return train_judge(spec, cfg, train, torch.device("cpu")).model.eval()


def test_fratio_is_the_share_of_images_judged_a_target_class():
    judge = BrightnessJudge()
    bright, dark = torch.ones(6, 1, 28, 28), torch.zeros(18, 1, 28, 28)
    assert fratio(judge, bright, [1], batch_size=4) == 1.0
    assert fratio(judge, dark, [1], batch_size=4) == 0.0
    assert fratio(judge, torch.cat([bright, dark]), [1], batch_size=5) == 0.25
    assert fratio(judge, torch.cat([bright, dark]), [0, 1]) == 1.0  # several targets: any
    batches = [bright[:2], dark[:2], bright[2:]]  # an iterable of batches works as well
    assert fratio(judge, batches, [1]) == pytest.approx(6 / 8)


def test_fratio_of_real_digits_with_a_trained_judge(good_judge, mnist138_test):
    """Real class-1 images stand in for a generator that only makes ones, real 3s and 8s for
    one that never does; the judge's index of digit 1 is 0 (its classes are 1, 3, 8)."""
    images, labels = mnist138_test
    ones, others = images[labels == 1], images[labels != 1]
    with torch.no_grad():  # the judge's own verdicts, in one batch: what fratio must count
        expected = [(good_judge(x).argmax(1) == 0).float().mean().item() for x in (ones, others)]
    assert fratio(good_judge, ones, [0], batch_size=64) == pytest.approx(expected[0])
    assert fratio(good_judge, others, [0], batch_size=64) == pytest.approx(expected[1])
    # a judge this accurate (about 98% held out) calls nearly every 1 a 1 and nearly no 3 or 8
    assert expected[0] >= 0.9 and expected[1] <= 0.1


def test_fratio_rejects_empty_input():
    with pytest.raises(ValueError):
        fratio(BrightnessJudge(), torch.zeros(0, 1, 28, 28), [1])
    with pytest.raises(ValueError):
        fratio(BrightnessJudge(), torch.zeros(2, 1, 28, 28), [])


def naive_inception_score(logits: torch.Tensor) -> float:
    p = logits.double().softmax(1)  # (N, K)
    marginal = p.mean(0, keepdim=True)  # (1, K)
    kl = (p * (p.log() - marginal.log())).sum(1)  # (N,)
    return kl.mean().exp().item()


def test_inception_score_of_one_class_is_one():
    judge = LinearJudge(logits=[8.0, 0.0, 0.0])  # every image: almost surely class 0
    assert inception_score(judge, torch.rand(50, 1, 28, 28), batch_size=16) == pytest.approx(
        1.0, abs=1e-12
    )


def test_inception_score_matches_the_formula():
    torch.manual_seed(0)
    judge = LinearJudge()
    images = torch.rand(120, 1, 28, 28)
    with torch.no_grad():
        logits = judge(images)
    assert inception_score(judge, images, batch_size=32) == pytest.approx(
        naive_inception_score(logits), rel=1e-9
    )


def test_inception_score_reaches_the_number_of_classes():
    """Confident and evenly spread predictions over 2 classes give IS = 2."""
    images = torch.cat([torch.ones(10, 1, 28, 28), torch.zeros(10, 1, 28, 28)])
    assert inception_score(BrightnessJudge(), images) == pytest.approx(2.0, rel=1e-6)


def naive_fid(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double().numpy(), b.double().numpy()
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(cov_a @ cov_b).real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * root))


def test_fid_of_a_set_against_itself_is_zero():
    torch.manual_seed(0)
    judge = LinearJudge()
    images = torch.rand(64, 1, 28, 28)
    assert fid(judge, images, images, batch_size=20) == pytest.approx(0.0, abs=1e-8)


def test_fid_matches_the_formula_and_grows_with_the_difference():
    torch.manual_seed(0)
    judge = LinearJudge()
    real = torch.rand(80, 1, 28, 28)
    near, far = real * 0.9, real * 0.3
    with torch.no_grad():
        expected = naive_fid(judge.features(near), judge.features(real))
    assert fid(judge, near, real) == pytest.approx(expected, rel=1e-6)
    assert 0 < fid(judge, near, real) < fid(judge, far, real)


def test_fid_needs_two_images_per_side():
    with pytest.raises(ValueError, match="at least 2"):
        fid(LinearJudge(), torch.rand(1, 1, 28, 28), torch.rand(5, 1, 28, 28))


def test_images_reach_the_judge_unchanged():
    """torchmetrics 1.9 turns InceptionScore inputs into `(x * 255).byte()` when normalize=True,
    even with a custom extractor (FID leaves custom-extractor inputs alone). Our float images
    in [0, 1] must reach the judge exactly as given, in both metrics."""
    torch.manual_seed(0)
    images = torch.rand(10, 1, 28, 28)
    for judge, run in (
        (LinearJudge(), lambda j: fid(j, images, images, batch_size=10)),
        (LinearJudge(), lambda j: inception_score(j, images, batch_size=10)),
    ):
        run(judge)
        assert judge.seen, "the judge saw nothing"
        for seen in judge.seen:
            assert seen.dtype == torch.float32
            assert torch.equal(seen, images)


def test_torchmetrics_does_not_probe_the_judge_with_a_dummy_image():
    """`num_features` tells torchmetrics the feature width, so it never runs the judge on a
    299x299 dummy (which an AllCNN for 28x28 images would mangle or reject)."""
    judge = LinearJudge()
    fid(judge, torch.rand(3, 1, 28, 28), torch.rand(3, 1, 28, 28))
    assert all(x.shape[-1] == 28 for x in judge.seen)


def naive_auc(members: list[float], nonmembers: list[float]) -> float:
    wins = sum((m > n) + 0.5 * (m == n) for m in members for n in nonmembers)
    return wins / (len(members) * len(nonmembers))


def test_tpr_at_fpr_matches_counting_above_the_threshold():
    from unlearn_cli.metrics.privacy import tpr_at_fpr

    g = torch.Generator().manual_seed(0)
    nonmembers = torch.randn(1000, generator=g)
    members = torch.randn(200, generator=g) + 1.0
    threshold = nonmembers.sort(descending=True).values[10]  # 10 of 1000 above it: 1% FPR
    expected = (members > threshold).double().mean().item()
    assert tpr_at_fpr(members, nonmembers, 0.01) == pytest.approx(expected)
    assert tpr_at_fpr(nonmembers + 100, nonmembers, 0.01) == 1.0  # separable: all caught
    assert tpr_at_fpr(nonmembers - 100, nonmembers, 0.01) == 0.0
    # weights: the heavier half of the non-members alone sets the threshold
    w = torch.cat([torch.zeros(500), torch.ones(500)]).double()
    heavy = nonmembers[500:].sort(descending=True).values[5]  # 5 of 500 above: 1%
    expected = (members > heavy).double().mean().item()
    assert tpr_at_fpr(members, nonmembers, 0.01, w) == pytest.approx(expected)


def test_calibrated_scores_remove_what_models_that_never_saw_a_sample_also_do():
    """Easy images (low -ELBO under every model) are not members: calibration takes their ease
    out, so only what training on a sample added is left, and the attack finds the members."""
    from unlearn_cli.metrics.privacy import calibrated_scores, mia_auc

    g = torch.Generator().manual_seed(0)
    ease = torch.randn(400, generator=g) * 20  # per-image difficulty, shared by every model
    member = torch.arange(400) < 200
    nelbo = 100 + ease - 3.0 * member  # the model explains its members 3 nats better
    shadows = [100 + ease + torch.randn(400, generator=g) for _ in range(4)]
    plain = mia_auc(-nelbo[member], -nelbo[~member])
    scores = calibrated_scores(nelbo, shadows)
    calibrated = mia_auc(scores[member], scores[~member])
    assert plain < 0.6 and calibrated > 0.9
    with pytest.raises(ValueError):
        calibrated_scores(nelbo, [])


def test_mia_auc_extremes_and_ties():
    assert mia_auc(torch.tensor([5.0, 6.0]), torch.tensor([1.0, 2.0, 3.0])) == 1.0
    assert mia_auc(torch.tensor([1.0, 2.0]), torch.tensor([5.0, 6.0])) == 0.0
    assert mia_auc(torch.tensor([1.0, 1.0]), torch.tensor([1.0, 1.0])) == 0.5


def test_mia_auc_matches_pairwise_counting():
    g = torch.Generator().manual_seed(0)
    members = torch.randint(0, 20, (37,), generator=g).double()  # many ties
    nonmembers = torch.randint(0, 20, (51,), generator=g).double()
    assert mia_auc(members, nonmembers) == pytest.approx(
        naive_auc(members.tolist(), nonmembers.tolist()), abs=1e-12
    )


def test_mia_auc_needs_both_sets():
    with pytest.raises(ValueError):
        mia_auc(torch.tensor([]), torch.tensor([1.0]))
    with pytest.raises(ValueError, match="one weight"):
        mia_auc(torch.tensor([1.0]), torch.tensor([1.0, 2.0]), torch.tensor([1.0]))
    with pytest.raises(ValueError, match="not all 0"):
        mia_auc(torch.tensor([1.0]), torch.tensor([1.0, 2.0]), torch.zeros(2))


def naive_weighted_auc(members: list[float], nonmembers: list[float], weights: list[float]):
    wins = sum(w * ((m > n) + 0.5 * (m == n)) for m in members for n, w in zip(nonmembers, weights))
    return wins / (len(members) * sum(weights))


def test_weighted_mia_auc_matches_pairwise_counting():
    g = torch.Generator().manual_seed(1)
    members = torch.randint(0, 20, (23,), generator=g).double()  # many ties
    nonmembers = torch.randint(0, 20, (41,), generator=g).double()
    weights = torch.rand(41, generator=g, dtype=torch.float64)
    weights[::5] = 0  # zero weights drop their non-members
    expected = naive_weighted_auc(members.tolist(), nonmembers.tolist(), weights.tolist())
    assert mia_auc(members, nonmembers, weights) == pytest.approx(expected, abs=1e-12)
    # integer weights are copies: weight 2 is the same non-member twice
    twice = mia_auc(members, torch.cat([nonmembers, nonmembers[:5]]))
    weights = torch.ones(41, dtype=torch.float64)
    weights[:5] = 2
    assert mia_auc(members, nonmembers, weights) == pytest.approx(twice, abs=1e-12)


def test_class_mix_weights_give_each_class_the_members_share():
    members = torch.tensor([1, 1, 1, 8])  # 3/4 ones, 1/4 eights
    nonmembers = torch.tensor([1, 3, 8, 8, 8, 1, 3])
    w = class_mix_weights(members, nonmembers)
    assert w.dtype == torch.float64
    torch.testing.assert_close(
        w, torch.tensor([3 / 8, 0, 1 / 12, 1 / 12, 1 / 12, 3 / 8, 0]).double()
    )
    with pytest.raises(ValueError, match="class 8 has 1 member"):
        class_mix_weights(members, torch.tensor([1, 3]))


def test_reweighting_removes_the_bias_of_another_class_mix():
    """Scores that depend on the class only: the members (all ones) against a test set of
    mostly eights score higher than most non-members, although they are no more members than
    the test ones; weighted to the members' mix, the AUC is the ideal 0.5."""
    members = torch.tensor([1, 1, 1, 1])
    nonmembers = torch.tensor([1, 1, 8, 8, 8, 8, 8, 8])
    score = {1: -100.0, 8: -150.0}  # the ELBO explains ones better than eights
    m_scores = torch.tensor([score[c] for c in members.tolist()])
    n_scores = torch.tensor([score[c] for c in nonmembers.tolist()])
    assert mia_auc(m_scores, n_scores) == 0.875  # (6 wins + 2 ties / 2) / 8
    assert mia_auc(m_scores, n_scores, class_mix_weights(members, nonmembers)) == 0.5


def test_negative_elbo_is_seeded_and_leaves_the_global_rng_alone(mnist138_test):
    from unlearn_cli.models import VAE

    torch.manual_seed(0)
    vae = VAE("mlp", 1, 28, (32,), 4)
    images = mnist138_test[0][:40]
    torch.manual_seed(123)
    a = negative_elbo(vae, images, batch_size=16, seed=7)
    after = torch.rand(3)
    torch.manual_seed(123)
    b = negative_elbo(vae, images, batch_size=16, seed=7)
    assert torch.equal(a, b) and a.shape == (40,) and a.dtype == torch.float64
    assert torch.equal(torch.rand(3), after)  # the caller's random stream is untouched
    assert not torch.equal(negative_elbo(vae, images, batch_size=16, seed=8), a)
    torch.manual_seed(7)
    with torch.no_grad():
        direct = torch.cat([vae.negative_elbo(x) for x in images.split(16)])
    assert torch.allclose(a, direct.double())  # the VAE's own ELBO, under the given seed
