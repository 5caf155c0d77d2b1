"""Feature Unlearning: the latent geometry on hand-made tensors, SSIM against torchmetrics, and
the method's behaviour on the tiny VAE."""

from __future__ import annotations

import copy
import dataclasses
import math

import pytest
import torch
from conftest import RecordingProgress, ids_of_class

from unlearn_cli.errors import UsageError
from unlearn_cli.methods import configure, default_lr
from unlearn_cli.methods.fu import (
    FeatureUnlearning,
    FUConfig,
    blur_matrix,
    check_feature,
    check_shifted_share,
    expected_shifted_share,
    feature_direction,
    shift,
    ssim,
)

CPU = torch.device("cpu")


def test_threshold_is_midway_between_the_mean_projections():
    mu_f, mu_r = torch.tensor([2.0, 2.0, 0.0]), torch.tensor([0.0, 0.0, 1.0])
    unit, t = feature_direction(mu_f, mu_r)
    assert torch.allclose(unit, torch.tensor([2.0, 2.0, -1.0]) / 3)  # z_e / |z_e|, |z_e| = 3
    assert t == pytest.approx((8 / 3 + -1 / 3) / 2)  # projections 8/3 and -1/3
    assert t == pytest.approx((torch.dot(mu_f, unit) + torch.dot(mu_r, unit)).item() / 2)


def test_identical_means_have_no_direction():
    with pytest.raises(UsageError, match="no feature direction"):
        feature_direction(torch.ones(4), torch.ones(4))


def test_shift_moves_only_the_z_past_the_threshold_back_onto_it():
    unit, t = torch.tensor([1.0, 0.0]), 0.5
    z = torch.tensor([[2.0, 7.0], [0.5, 1.0], [-3.0, 2.0], [0.6, -1.0]])
    z_hat, shifted = shift(z, unit, t)
    assert shifted.tolist() == [True, False, False, True]
    assert torch.equal(z_hat[~shifted], z[~shifted])  # bit-exact: untouched
    assert torch.allclose(z_hat[shifted] @ unit, torch.full((2,), t))  # onto the threshold
    assert torch.equal(z_hat[:, 1], z[:, 1])  # the orthogonal part is kept


def test_blur_matrix_rows_are_normalised_gaussian_windows():
    k = blur_matrix(28)
    assert torch.allclose(k.sum(1), torch.ones(28))
    assert torch.allclose(k[14], k[13].roll(1))  # shift-invariant away from the border
    with pytest.raises(UsageError, match="too small"):
        blur_matrix(5)


@pytest.mark.parametrize("shape", [(6, 1, 28, 28), (3, 3, 20, 24)])
def test_ssim_matches_torchmetrics(shape):
    from torchmetrics.functional.image import structural_similarity_index_measure as reference

    g = torch.Generator().manual_seed(0)
    x = torch.rand(shape, generator=g)
    y = (x + 0.3 * torch.randn(shape, generator=g)).clamp(0, 1)
    y[0] = torch.rand(shape[1:], generator=g)  # one unrelated pair: SSIM near 0
    kh, kw = blur_matrix(shape[2]), blur_matrix(shape[3])
    ours = ssim(x, y, kh, kw)
    expected = reference(x, y, data_range=1.0, reduction="none")
    assert ours.shape == (shape[0],)
    assert torch.allclose(ours, expected, atol=1e-5)
    assert torch.allclose(ssim(x, x, kh, kw), torch.ones(shape[0]))


@pytest.fixture(scope="module")
def setup(tiny_vae):
    from unlearn_cli.data.images import split_by_ids
    from unlearn_cli.data.requests import training_set
    from unlearn_cli.engine.checkpoint import load_checkpoint

    ckpt = load_checkpoint(tiny_vae, "vae")
    data = training_set(ckpt.dataset)
    forget, retain = split_by_ids(data, data.ids[data.labels == 1])
    return ckpt, forget, retain


@pytest.fixture(scope="module")
def centred(setup):
    """The tiny VAE with its encoder's means recentred on 0 over the training set.

    Three epochs leave the tiny VAE's codes far from the prior (mean mu about 4 from the origin),
    which puts t below every prior sample. Recentring restores the geometry of a trained VAE
    (MNIST preset: t = 0.28, 39% of prior samples shifted) without a longer training run."""
    from unlearn_cli.engine.progress import NullProgress
    from unlearn_cli.methods.fu import mean_latent

    ckpt, forget, retain = setup
    model = copy.deepcopy(ckpt.model)
    centre = (
        mean_latent(model, forget, 128, CPU, NullProgress()) * len(forget)
        + mean_latent(model, retain, 128, CPU, NullProgress()) * len(retain)
    ) / (len(forget) + len(retain))
    with torch.no_grad():
        model.encoder[-1].bias[: model.latent_dim] -= centre
    return dataclasses.replace(ckpt, model=model), forget, retain


def run(setup, **overrides):
    ckpt, forget, retain = setup
    method = FeatureUnlearning()
    cfg = configure(method, ckpt, {"batch_size": 64, **overrides})
    progress = RecordingProgress()
    result = method.unlearn(ckpt, forget, retain, cfg, CPU, progress)
    return result.model, result.stats, progress


@pytest.fixture(scope="module")
def unlearned(centred):
    ckpt = centred[0]
    before = copy.deepcopy(ckpt.model.state_dict())
    model, stats, progress = run(centred, steps=300)
    return model, stats, progress, before


def test_defaults_follow_the_checkpoint(setup):
    ckpt = setup[0]
    cfg = FeatureUnlearning().default_config(ckpt)
    assert cfg.lr == default_lr(ckpt) == 5e-4
    assert cfg.batch_size == ckpt.training["batch_size"] == 32
    assert (cfg.steps, cfg.alpha, cfg.seed) == (2000, 3.0, 0)


@pytest.mark.parametrize("field", ["steps", "batch_size", "lr", "alpha"])
def test_validate_rejects_non_positive_values(setup, field):
    with pytest.raises(UsageError) as caught:
        configure(FeatureUnlearning(), setup[0], {field: 0})
    assert caught.value.setting == field  # named by the setting; the CLI makes it a flag
    with pytest.raises(UsageError):
        FUConfig(**{field: -1}).validate()


def test_only_the_students_decoder_changes(centred, unlearned):
    ckpt = centred[0]
    model, _, _, before = unlearned
    for k, v in ckpt.model.state_dict().items():
        assert torch.equal(v, before[k]), f"input checkpoint's {k} changed"
    for k, v in model.encoder.state_dict().items():
        assert torch.equal(v, ckpt.model.encoder.state_dict()[k])
    assert any(
        not torch.equal(v, ckpt.model.decoder.state_dict()[k])
        for k, v in model.decoder.state_dict().items()
    )
    assert model is not ckpt.model and not model.training


def test_student_keeps_the_retain_side_and_moves_the_forget_side(centred, unlearned):
    from unlearn_cli.engine.progress import NullProgress
    from unlearn_cli.methods.fu import mean_latent

    ckpt, forget, retain = centred
    teacher = ckpt.model
    model, stats, _, _ = unlearned
    with torch.no_grad():
        mu_f = mean_latent(teacher, forget, 128, CPU, NullProgress())
        mu_r = mean_latent(teacher, retain, 128, CPU, NullProgress())
        unit, t = feature_direction(mu_f, mu_r)
        z = torch.randn(4000, teacher.latent_dim, generator=torch.Generator().manual_seed(7))
        z_hat, _ = shift(z, unit, t)
        proj = z @ unit
        far_retain, far_forget = proj < t - 1, proj > t + 1
        target = teacher.decode(z_hat)
        before = (teacher.decode(z) - target).abs().flatten(1).mean(1)  # (N,)
        after = (model.decode(z) - target).abs().flatten(1).mean(1)
    assert far_retain.sum() > 100 and far_forget.sum() > 100
    # retain side: the target is the teacher's own output, and the student stays near it
    assert after[far_retain].mean() < 0.02
    # forget side: the student's output moves toward the teacher's output at the shifted z
    assert after[far_forget].mean() < 0.5 * before[far_forget].mean()
    assert stats["threshold"] == pytest.approx(t, abs=1e-4)


def test_loss_falls_and_stats_describe_the_run(unlearned):
    _, stats, progress, _ = unlearned
    losses = [float(s.split()[-1]) for s in progress.statuses]
    assert losses[-1] < 0.5 * losses[0]
    assert stats["final_loss"] == pytest.approx(losses[-1], abs=1e-4)
    assert progress.tasks[-1] == ("fu", 300) and progress.steps >= 300
    # a prior sample's projection on a unit vector is N(0, 1): P(shifted) = P(N(0, 1) > t)
    expected = 0.5 * math.erfc(stats["threshold"] / math.sqrt(2))
    assert stats["shifted_fraction"] == pytest.approx(expected, abs=0.02)


def test_same_seed_same_weights_other_seed_other_weights(setup):
    a, _, _ = run(setup, steps=5)
    b, _, _ = run(setup, steps=5)
    c, _, _ = run(setup, steps=5, seed=1)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)


def test_off_centre_codes_put_every_prior_sample_past_the_threshold(setup):
    _, stats, progress = run(setup, steps=5)
    assert stats["threshold"] < -4 and stats["shifted_fraction"] == 1.0
    # the forget set (the ones) is 118 of the 300 training samples: fu says its direction is off
    [warning] = [m for m in progress.logs if m.startswith("warning:")]
    assert "shifts 100.0% of prior samples but the forget set is 39.3%" in warning


def test_a_centred_model_shifts_about_the_forget_share_and_does_not_warn(unlearned):
    _, stats, progress, _ = unlearned
    assert not [m for m in progress.logs if m.startswith("warning:")]
    assert 0.5 * 0.393 <= stats["shifted_fraction"] <= 2 * 0.393


def test_expected_shifted_share_is_the_normal_tail():
    assert expected_shifted_share(0.0) == 0.5
    assert expected_shifted_share(1.0) == pytest.approx(0.158655, abs=1e-6)
    assert expected_shifted_share(-1.0) == pytest.approx(1 - 0.158655, abs=1e-6)


@pytest.mark.parametrize(
    "shifted, forget_share, warns",
    [
        (0.36, 0.36, False),
        (0.6, 0.36, False),  # within a factor 2 on both sides: kept 0.4 vs 0.64
        (0.7, 0.36, True),  # kept 0.3 is less than half of 0.64
        (0.17, 0.36, True),  # shifted is less than half of 0.36
        (0.05, 0.05, False),
        (0.2, 0.05, True),  # a rare feature, four times as many shifted
        (1.0, 0.36, True),
    ],
)
def test_shifted_share_far_from_the_forget_share_warns(shifted, forget_share, warns):
    assert (check_shifted_share(shifted, forget_share) is not None) == warns


def test_fu_refuses_what_is_not_a_feature():
    check_feature(torch.tensor([1, 1]), torch.tensor([3, 8, 3]))  # a class: fine
    with pytest.raises(UsageError, match="1 of the 2 samples to forget share their class"):
        check_feature(torch.tensor([1, 3]), torch.tensor([3, 8]))  # a 3 is kept
    male, female_glasses, male_glasses = [1, 0], [0, 1], [1, 1]
    flags = torch.tensor  # (N, 2) attribute flags: Male, Eyeglasses
    check_feature(flags([male, male_glasses]), flags([female_glasses]))  # Male: fine
    with pytest.raises(UsageError, match="individual samples"):
        check_feature(flags([male]), flags([male, female_glasses]))  # one male is kept


def test_forget_individual_samples_with_fu_is_a_usage_error(cli, tiny_vae, tmp_path):
    out = tmp_path / "fu.safetensors"
    r = cli("forget", tiny_vae, "--indices", ids_of_class(tiny_vae), "--method", "fu", "--out", out)
    assert r.exit_code == 2, r.stderr
    assert "fu removes a feature" in r.stderr and "surgery or ascent" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not out.exists()


def test_empty_forget_set_is_a_usage_error(setup):
    ckpt, forget, retain = setup
    empty = forget.subset(torch.tensor([], dtype=torch.long))
    cfg = FeatureUnlearning().default_config(ckpt)
    with pytest.raises(UsageError, match="non-empty forget"):
        FeatureUnlearning().unlearn(ckpt, empty, retain, cfg, CPU, RecordingProgress())
