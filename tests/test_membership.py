"""Redirect's step 3: forgotten samples' loss rises to the held-out level, and no further."""

from __future__ import annotations

import copy

import pytest
import torch

from unlearn_cli.data.images import ImageData
from unlearn_cli.data.requests import training_set
from unlearn_cli.engine.progress import NullProgress
from unlearn_cli.engine.train import TrainConfig, train_vae
from unlearn_cli.methods import membership, scoped_parameters, train_only
from unlearn_cli.methods.settings import RedirectConfig
from unlearn_cli.methods.steps import make_optimizer

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def trained(tiny_spec, tiny_vae_config):
    """The tiny VAE trained to convergence (40 epochs on 300 images), so that descending the
    retain loss no longer lowers every loss by itself."""
    return train_vae(tiny_spec, tiny_vae_config, TrainConfig(epochs=40, batch_size=32), CPU)


def rise(ids: torch.Tensor) -> torch.Tensor:
    """The tests' per-sample targets: 10, 25 or 40 nats above a sample's loss, by its id."""
    return 10 + 15 * (ids % 3).float()


@pytest.fixture(autouse=True)
def known_targets(request, monkeypatch):
    """Targets a test can check against: its held-out images are D_r's rolled sideways, a gap
    for `visible` to see, but not images whose unseen loss `targets` could predict."""
    if "with_components" in request.keywords:
        return

    def targets(reference, forget, heldout, retain, device):
        tau = membership.losses(reference, forget, device) + rise(forget.ids)
        return lambda heldout_losses: tau

    monkeypatch.setattr(membership, "targets", targets)


def setup(ckpt, heldout_shift: int):
    """The VAE, its first 32 training images as D_f, the rest as D_r, and held-out images:
    D_r's images rolled by `heldout_shift` pixels (0: as well explained as D_r)."""
    data = training_set(ckpt.dataset)
    forget, retain = data.subset(torch.arange(32)), data.subset(torch.arange(32, len(data)))
    images = retain.images.roll(heldout_shift, dims=-1)
    heldout = ImageData(images, retain.labels, retain.ids + 10**6)
    return ckpt.model, forget, retain, heldout


def run(model, forget, retain, heldout, steps=150):
    reference = copy.deepcopy(model).requires_grad_(False)
    model = copy.deepcopy(model)
    params = scoped_parameters(model, "decoder")
    train_only(model, params)
    opt = make_optimizer("adam", params, 3e-3)
    cfg = RedirectConfig(batch_size=32)
    data, generator = (forget, retain, heldout), torch.Generator().manual_seed(0)
    found = membership.look(model, reference, data, CPU, generator)
    stats = found.stats
    if found.probes is not None:  # as redirect runs it, less the retraining it may choose
        stats, _ = membership.raise_to_targets(
            model, reference, params, opt, data, found, steps, cfg, CPU, generator,
            NullProgress(),
        )  # fmt: skip
    return model.requires_grad_(True).eval(), stats


def test_each_forgotten_loss_rises_to_its_target_and_no_further(trained):
    model, forget, retain, heldout = setup(trained, heldout_shift=3)
    before = membership.losses(model, forget, CPU)
    after_model, stats = run(model, forget, retain, heldout, steps=5 * membership.CHECK_EVERY)
    assert stats["membership_gap"] > 10  # shifted digits are explained worse: a visible gap
    assert stats["membership_reached"]
    got = membership.losses(after_model, forget, CPU) - before
    want = rise(forget.ids)
    assert 0.7 * want.mean() < got.mean() < 1.3 * want.mean()  # reaches them, stays near them
    for k in range(3):  # per sample: the ones asked to rise further rise further
        assert 0.5 * want[forget.ids % 3 == k].mean() < got[forget.ids % 3 == k].mean()
    assert got[forget.ids % 3 == 2].mean() > got[forget.ids % 3 == 0].mean() + 10
    retain_before = membership.losses(model, retain, CPU).mean().item()
    retain_after = membership.losses(after_model, retain, CPU).mean().item()
    assert retain_after < retain_before + 0.2 * stats["membership_gap"]  # D_r is kept


def test_the_shortfall_left_after_the_steps_is_measured_and_tested_against_noise(trained):
    model, forget, retain, heldout = setup(trained, heldout_shift=3)
    _, few = run(model, forget, retain, heldout, steps=2)  # too few to raise them that far
    assert not few["membership_reached"] and few["membership_short"] > 0.5 * rise(forget.ids).mean()
    _, capped = run(model, forget, retain, heldout, steps=5 * membership.CHECK_EVERY)
    assert capped["membership_reached"] and capped["membership_short"] < 0.3 * 25
    # it stopped at a test that found them there, before the cap
    assert capped["membership_steps"] % membership.CHECK_EVERY == 0
    assert capped["membership_steps"] < 5 * membership.CHECK_EVERY


def test_nothing_to_do_when_the_samples_already_look_unseen(trained):
    model, forget, retain, _ = setup(trained, heldout_shift=0)
    # held-out data as well explained as the retained: no gap, and the model is the reference
    after, stats = run(model, forget, retain, retain)
    assert stats["membership_steps"] == 0 and abs(stats["membership_gap"]) < 1e-6
    assert all(
        torch.equal(a, b) for a, b in zip(after.state_dict().values(), model.state_dict().values())
    )


class Raised(torch.nn.Module):
    """A model whose every loss is `model`'s plus `by` nats: forgotten samples it raised."""

    def __init__(self, model, by: float):
        super().__init__()
        self.model, self.by = model, by

    def negative_elbo(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.negative_elbo(x) + self.by


def test_a_glance_settles_samples_raised_past_the_gap_and_nothing_less(trained, monkeypatch):
    model, forget, retain, heldout = setup(trained, heldout_shift=3)
    measured = []
    real_losses = membership.losses

    def counted(m, data, device, seed=0):
        measured.append(len(data))
        return real_losses(m, data, device, seed)

    monkeypatch.setattr(membership, "losses", counted)
    monkeypatch.setattr(membership, "GLANCE", 8)
    data = (forget, retain, heldout)
    reference = copy.deepcopy(model).requires_grad_(False)
    gap = membership.gap_stats(real_losses(model, heldout, CPU), real_losses(model, retain, CPU))
    assert gap["membership_gap"] > 10
    # raised well past the gap (a class the pass redirected): 8 samples of each probe settle it
    found = membership.look(Raised(model, 3 * gap["membership_gap"]), reference, data, CPU,
                            torch.Generator().manual_seed(0))  # fmt: skip
    assert found.probes is None and measured == [8, 8, 8, 8] and len(found.read) == 8
    # raised by less than the gap: the whole probes are measured, and there is work to do
    measured.clear()
    found = membership.look(Raised(model, 0.5 * gap["membership_gap"]), reference, data, CPU,
                            torch.Generator().manual_seed(0))  # fmt: skip
    assert found.probes is not None and max(measured) == len(retain)
    assert found.stats["membership_gap"] == gap["membership_gap"]  # from the whole probes


def test_clearly_past_needs_the_rise_beyond_the_gap_and_its_noise():
    g = torch.Generator().manual_seed(0)
    unseen, seen = 50 + 10 * torch.randn(256, generator=g), 40 + 10 * torch.randn(256, generator=g)
    gap = (unseen.mean() - seen.mean()).item()
    assert membership.clearly_past(torch.full((256,), gap + 5.0), unseen, seen)
    assert not membership.clearly_past(torch.full((256,), gap + 1.0), unseen, seen)  # noise
    assert not membership.clearly_past(torch.full((256,), gap - 5.0), unseen, seen)
    noisy = gap + 5.0 + 60 * torch.randn(256, generator=g)  # a rise as noisy as that
    assert not membership.clearly_past(noisy - noisy.mean() + gap + 5.0, unseen, seen)
    assert not membership.clearly_past(torch.tensor([gap + 50.0]), unseen, seen)  # one sample


class Stub(torch.nn.Module):
    """A model whose every loss is 0: its targets are the regression's predictions."""

    def negative_elbo(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros(len(x))


@pytest.mark.with_components
def test_targets_predict_each_samples_unseen_loss_from_its_pixels(trained):
    _, forget, retain, _ = setup(trained, heldout_shift=0)
    heldout = retain.subset(torch.arange(len(retain) // 2))

    def ink(data):
        return data.images.float().div(255).flatten(1).sum(1)

    # held-out losses that follow the ink: each forgotten sample's target follows its own ink
    predict = membership.targets(Stub(), forget, heldout, retain, CPU)
    tau = predict(2 * ink(heldout) + 7)
    assert torch.allclose(tau, 2 * ink(forget) + 7, rtol=0.02)
    assert tau.std() > 10  # per sample, not one level for all
    # a model that explains held-out data 20 nats worse asks 20 nats more of every sample
    assert torch.allclose(predict(2 * ink(heldout) + 27), tau + 20, atol=0.05)
    # never below a sample's loss before
    floor = membership.targets(trained.model, forget, heldout, retain, CPU)
    assert torch.equal(
        floor(torch.zeros(len(heldout))), membership.losses(trained.model, forget, CPU)
    )


def test_the_targets_follow_the_held_out_level_of_the_model_being_forgotten(trained, monkeypatch):
    """An attack compares a forgotten sample with what the same model makes of unseen data: the
    targets come from the held-out losses of the model as step 3 finds it, and again from its
    held-out losses at every test, not from the model before forgetting."""
    model, forget, retain, heldout = setup(trained, heldout_shift=3)
    levels = []

    def targets(reference, forget, heldout, retain, device):
        tau = membership.losses(reference, forget, device) + rise(forget.ids)

        def predict(heldout_losses):
            levels.append(heldout_losses.mean().item())
            return tau

        return predict

    monkeypatch.setattr(membership, "targets", targets)
    before = membership.losses(model, heldout, CPU).mean().item()
    after, stats = run(model, forget, retain, heldout, steps=2 * membership.CHECK_EVERY)
    assert stats["membership_steps"] >= membership.CHECK_EVERY  # one test at least
    assert len(levels) == 1 + stats["membership_steps"] // membership.CHECK_EVERY
    assert abs(levels[0] - before) < 1e-3  # the model as step 3 found it
    last = membership.losses(after, heldout, CPU).mean().item()
    assert abs(levels[-1] - last) < 1e-3  # and as it ended: the steps moved its level
    assert abs(levels[-1] - levels[0]) > 0.5


def test_attack_auc_counts_unseen_losses_above_seen_ones():
    seen = torch.tensor([1.0, 2.0, 3.0, 4.0])
    assert membership.attack_auc(seen + 10, seen) == 1.0  # every unseen loss above every seen
    assert membership.attack_auc(seen - 10, seen) == 0.0
    assert membership.attack_auc(torch.tensor([2.5, 2.5]), seen) == 0.5
    # the normal model's Phi(gap / (sd sqrt 2)): a 1-nat gap on a 27-nat spread is AUC 0.51
    g = torch.Generator().manual_seed(0)
    unseen, seen = 27 * torch.randn(4000, generator=g) + 1, 27 * torch.randn(4000, generator=g)
    assert abs(membership.attack_auc(unseen, seen) - 0.5104) < 0.008
    assert membership.attack_auc(torch.tensor([2.0]), torch.tensor([2.0, 3.0])) == 0.25  # a tie


def test_an_advantage_too_small_for_the_request_is_not_visible():
    # the same attack AUC is chance on 50 samples and evidence on 50,000; 2048 probes each way
    assert not membership.visible(0.58, 50, 2048, 2048)  # the bar: 0.585
    assert membership.visible(0.59, 50, 2048, 2048)
    assert not membership.visible(0.52, 50_000, 2048, 2048)  # the probes' own noise: 0.522
    assert membership.visible(0.53, 50_000, 2048, 2048)
    assert membership.visible(0.85, 50, 2048, 2048)  # a memorising model, on any request


def test_a_gap_too_small_for_a_few_samples_is_left_alone(trained):
    model, forget, retain, heldout = setup(trained, heldout_shift=3)
    # half the held-out images shifted (explained worse), half as well explained as D_r: an
    # attack AUC near 0.67, below the bar for 4 samples (0.80) and above it for 32 (0.62)
    half = len(heldout) // 2
    images = torch.cat([heldout.images[:half], retain.images[half:]])
    mixed = ImageData(images, heldout.labels, heldout.ids)
    _, few = run(model, forget.subset(torch.arange(4)), retain, mixed, steps=5)
    _, many = run(model, forget, retain, mixed, steps=5)
    assert 0.62 < few["membership_auc"] == many["membership_auc"] < 0.80
    assert few["membership_steps"] == 0 and many["membership_steps"] == 5


def test_a_large_sample_request_raises_the_samples_the_pass_never_read_like_the_rest(
    trained, monkeypatch
):
    """Redirect's pass reads a sample of the request (`covering`); step 3 reads every one and
    raises the samples the pass never read as far as the ones it read, toward their targets (at
    the test's step size; the default's is smaller), and the lineage says how far short of them
    it stopped."""
    from unlearn_cli.methods import configure, get_method
    from unlearn_cli.methods import redirect as redirect_module

    monkeypatch.setattr(redirect_module, "BANK_SIZE", 64)  # a bank a quarter of D_r's size
    data = training_set(trained.dataset)
    forget, retain = data.subset(torch.arange(96)), data.subset(torch.arange(96, len(data)))
    heldout = ImageData(retain.images.roll(3, dims=-1), retain.labels, retain.ids + 10**6)
    method = get_method("redirect")
    # a step size that gets far in few steps, and steps that read fewer images than retraining
    # (40 epochs over 204 images), which would otherwise be the cheaper way
    cfg = configure(method, trained, {"lr": 5e-3, "match_steps": 120})
    assert not redirect_module.retraining_is_cheaper(trained, forget, retain, cfg)
    read = {}
    real_covering = redirect_module.covering

    def spy(*args):
        read["covered"] = real_covering(*args)
        return read["covered"]

    monkeypatch.setattr(redirect_module, "covering", spy)
    child = method.unlearn(trained, forget, retain, cfg, CPU, NullProgress(), heldout)
    unread = ~torch.isin(forget.ids, read["covered"].ids)
    assert 0 < unread.sum() < len(forget)  # the pass read a part of the request
    assert child.stats["forget_images_read"] == len(forget)  # step 3 read every sample
    assert child.stats["membership_gap"] > 10  # held-out data is explained worse: a gap
    risen = membership.losses(child.model, forget, CPU) - membership.losses(
        trained.model, forget, CPU
    )
    want = rise(forget.ids)
    assert risen.mean() > 0.4 * want.mean()  # well on the way over all of D_f
    assert risen[unread].mean() > 0.8 * risen[~unread].mean()  # the unread ones alike
    # 96 random training images of a 4-latent VAE, held back by the retain loss counted twice,
    # stop short of their targets: the lineage says by as much as they are
    assert abs(child.stats["membership_short"] - (want - risen).mean().item()) < 1.0


def test_a_request_whose_steps_could_cost_more_than_retraining_is_retrained(trained):
    """A memorised request whose step 3 could read more images than retraining on D_r does
    is forgotten by retraining: every forgotten sample is then exactly where a model that never
    saw it puts it, the per-sample check passed on every sample. A request the steps can afford
    is not."""
    from unlearn_cli.methods import configure, get_method
    from unlearn_cli.methods import redirect as redirect_module

    data = training_set(trained.dataset)
    forget, retain = data.subset(torch.arange(96)), data.subset(torch.arange(96, len(data)))
    heldout = ImageData(retain.images.roll(3, dims=-1), retain.labels, retain.ids + 10**6)
    method, retrain = get_method("redirect"), get_method("retrain")
    # 1000 steps of 32 forgotten and 32 retained images against 40 epochs over 204 images
    cfg = configure(method, trained, {})
    assert redirect_module.retraining_is_cheaper(trained, forget, retain, cfg)
    child = method.unlearn(trained, forget, retain, cfg, CPU, NullProgress(), heldout)
    assert child.stats["retrained"] and child.stats["membership_gap"] > 10
    assert child.stats["membership_steps"] == 0  # no step of the hinge was paid for
    alone = retrain.unlearn(trained, forget, retain, retrain.default_config(trained), CPU,
                            NullProgress())  # fmt: skip
    for a, b in zip(child.model.state_dict().values(), alone.model.state_dict().values()):
        assert torch.equal(a, b)
    # a few steps are cheaper than retraining: they run, and nothing is retrained
    few = configure(method, trained, {"match_steps": 10})
    assert not redirect_module.retraining_is_cheaper(trained, forget, retain, few)
    child = method.unlearn(trained, forget, retain, few, CPU, NullProgress(), heldout)
    assert "retrained" not in child.stats and child.stats["membership_steps"] == 10


def test_forget_and_inspect_say_when_it_retrained_and_only_then():
    from unlearn_cli.cli.forget import retrained_line
    from unlearn_cli.cli.inspect import method_of

    line = retrained_line({"retrained": True, "membership_steps": 0})
    assert line is not None and "retrained from scratch" in line
    assert retrained_line({"membership_steps": 200}) is None
    retrained = {"method": "redirect", "stats": {"retrained": True}}
    assert method_of(retrained) == "redirect → retrain"
    assert method_of({"method": "redirect", "stats": {"membership_steps": 200}}) == "redirect"


def test_forget_warns_when_memorised_samples_are_left_short_and_only_then():
    from unlearn_cli.cli.forget import membership_line

    short = {"membership_steps": 200, "membership_short": 9.04, "membership_reached": False}
    line = membership_line(short)
    assert line is not None and "still explained 9.0 nats better" in line
    assert "after 200 steps" in line and "--match-steps" in line
    assert membership_line({**short, "membership_reached": True}) is None
    assert membership_line({"membership_steps": 0}) is None  # a model that does not memorise
