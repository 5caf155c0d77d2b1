"""Redirect: the prior refit is an exact change of coordinates, the target bank keeps only
interior retained latents, and the pass forgets while it keeps the retained data."""

from __future__ import annotations

import copy
import dataclasses
import math

import pytest
import torch
from conftest import RecordingProgress

from unlearn_cli.data.images import ImageData
from unlearn_cli.methods.redirect import encode_all, interior, refit_prior
from unlearn_cli.methods.settings import RedirectConfig


@pytest.fixture(scope="module")
def setting(tiny_vae):
    from unlearn_cli.data.requests import Request
    from unlearn_cli.engine.checkpoint import load_checkpoint
    from unlearn_cli.workflows.forget import plan_forget

    ckpt = load_checkpoint(tiny_vae)
    plan = plan_forget(ckpt, [Request("ones", "class", (1,))])
    return ckpt, plan


def run(ckpt, plan, **options):
    from unlearn_cli.methods import configure, get_method
    from unlearn_cli.workflows.forget import run_forget

    method = get_method("redirect")
    cfg = configure(method, ckpt, options)
    return run_forget(ckpt, plan, method, cfg, torch.device("cpu"))


def test_refit_changes_coordinates_not_reconstructions(setting):
    ckpt, plan = setting
    model = copy.deepcopy(ckpt.model)
    mu, logvar = encode_all(model, plan.retain, torch.device("cpu"))
    x = torch.rand(5, 1, 28, 28)
    mu_x, logvar_x = model.encode(x)
    before = model.decode(mu_x)
    m, a, shift = refit_prior(model, mu, logvar)
    new_mu, new_logvar = model.encode(x)
    torch.testing.assert_close(new_mu, (mu_x - m) @ a.T, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(new_logvar, logvar_x + shift, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(
        model.decode(new_mu), before, atol=1e-5, rtol=0
    )  # same image, new coordinates
    # the retained data's aggregate posterior is now centred, with unit spread in every
    # dimension and uncorrelated dimensions
    mu2, logvar2 = encode_all(model, plan.retain, torch.device("cpu"))
    torch.testing.assert_close(mu2.mean(0), torch.zeros_like(m), atol=1e-5, rtol=0)
    cov = torch.cov(mu2.T) + torch.diag(logvar2.exp().mean(0))
    torch.testing.assert_close(cov, torch.eye(len(m)), atol=0.05, rtol=0)
    before_corr = torch.cov(mu.T) + torch.diag(logvar.exp().mean(0))
    off = ~torch.eye(len(m), dtype=torch.bool)
    assert before_corr[off].abs().max() > 0.1  # a case with correlations to remove


def test_interior_equals_its_definition():
    g = torch.Generator().manual_seed(0)
    bank, others, k = torch.randn(60, 3, generator=g), torch.randn(20, 3, generator=g) + 1, 4
    expected = []
    for row in bank:
        d = sorted((bank - row).norm(dim=1).tolist())[1 : k + 1]  # k nearest, not itself
        expected.append(min((others - row).norm(dim=1).tolist()) > d[-1])
    assert interior(bank, others, k).tolist() == expected
    assert 0 < sum(expected) < len(expected)  # a case with both answers
    # a bank no larger than k (a tiny retained set): every other row counts
    small = bank[:3]
    nearest_other = torch.cdist(small, small).sort(dim=1).values[:, -1]
    want = torch.cdist(small, others).min(dim=1).values > nearest_other
    assert interior(small, others, k).tolist() == want.tolist()


def test_refit_only_keeps_the_decoder_up_to_coordinates(setting):
    ckpt, plan = setting
    child = run(ckpt, plan, epochs=0, retain_epochs=0).model
    x = plan.retain.images[:8].float() / 255
    with torch.no_grad():
        torch.testing.assert_close(
            child.decode(child.encode(x)[0]), ckpt.model.decode(ckpt.model.encode(x)[0])
        )


@pytest.mark.parametrize(
    "forgotten, epochs, steps",
    [(1000, 0.0, 0), (1000, 0.5, 2), (1000, 1.0, 4), (1000, 1.2, 5), (9, 1.0, 2), (2, 1.0, 1)],
)
def test_keep_training_runs_its_share_of_a_pass_on_every_parameter(
    setting, forgotten, epochs, steps
):
    from unlearn_cli.methods import configure, get_method
    from unlearn_cli.methods.redirect import keep_training

    ckpt, plan = setting
    cfg = configure(get_method("redirect"), ckpt, {"retain_epochs": epochs, "batch_size": 46})
    assert math.ceil(len(plan.retain) / 46) == 4  # the fixture's D_r: four batches a pass
    model, progress = copy.deepcopy(ckpt.model), RecordingProgress()
    # ten retained images per forgotten one (9 -> 90 of 182: half a pass), retain_epochs at most
    keep_training(
        model, plan.retain, forgotten, cfg, torch.device("cpu"), torch.Generator(), progress
    )
    assert progress.stages.get("redirect: training on D_r", [0, 0]) == [steps, steps]
    moved = [not torch.equal(p, q) for p, q in zip(model.parameters(), ckpt.model.parameters())]
    assert all(moved) if steps else not any(moved)  # encoder and decoder alike


def targets_case(setting):
    """Six images, a bank of 40 latents and its decodings; `targets(among)` picks with the same
    posterior draws every time."""
    from unlearn_cli.methods.redirect import decode_all, looked_up, posteriors, redirect_targets

    model = setting[0].model.eval()
    g = torch.Generator().manual_seed(0)
    pixels = torch.randint(0, 256, (6, 1, 28, 28), generator=g, dtype=torch.uint8)
    bank = torch.randn(40, model.latent_dim, generator=g)
    drawn = decode_all(model, bank)
    x = pixels.float() / 255
    with torch.no_grad():
        recon = model.decode(model.encode(x)[0])
    # ids out of order: the lookup finds each image's own posterior and reconstruction
    images = ImageData(pixels, torch.zeros(6, dtype=torch.long), torch.tensor([5, 3, 9, 0, 7, 1]))
    posterior = looked_up(posteriors(model, images, torch.device("cpu")), images.ids)
    torch.testing.assert_close(posterior[2], recon.flatten(1))

    def targets(among):
        return redirect_targets(posterior, bank, drawn, torch.Generator().manual_seed(1), among)

    return bank, drawn, recon, targets


def test_local_targets_pick_among_the_draws_nearest_bank_latents(setting):
    bank, drawn, recon, targets = targets_case(setting)
    z, target = targets(5)
    for draw, image, got in zip(z, recon, target):
        near = sorted(range(len(bank)), key=lambda i: (bank[i] - draw).norm().item())[:5]
        best = min(near, key=lambda i: (drawn[i] - image).pow(2).sum().item())
        torch.testing.assert_close(got, drawn[best])
    z_one, nearest = targets(1)
    torch.testing.assert_close(z_one, z)  # the same posterior draws either way
    assert not torch.equal(target, nearest)  # the neighbourhood changes the pick


def test_the_npo_push_ascends_the_forgotten_images_loss_and_fades(setting):
    from unlearn_cli.methods.redirect import cross_entropy, redirect_loss

    model = copy.deepcopy(setting[0].model)
    g = torch.Generator().manual_seed(0)
    z = torch.randn(4, model.latent_dim, generator=g)
    target, x_f = torch.rand(4, 1, 28, 28, generator=g), torch.rand(4, 1, 28, 28, generator=g)
    params = list(model.decoder.parameters())

    def grad(loss):
        return torch.cat(
            [p.flatten() for p in torch.autograd.grad(loss, params, retain_graph=True)]
        )

    with torch.no_grad():
        start = cross_entropy(model.decode_logits(z), x_f)  # delta = 0: where the pass starts
    plain = redirect_loss(model, z, target)
    off = redirect_loss(model, z, target, x_f=x_f, start=start, npo_weight=0.0)
    torch.testing.assert_close(off, plain)
    pushed = redirect_loss(model, z, target, x_f=x_f, start=start, npo_weight=10.0)
    torch.testing.assert_close(pushed - plain, torch.tensor(10.0 * 20 * math.log(2)))
    # at delta = 0 the push is plain ascent of the cross-entropy to x_f, at full weight
    ascent = -10.0 * cross_entropy(model.decode_logits(z), x_f).mean()
    torch.testing.assert_close(grad(pushed) - grad(plain), grad(ascent), atol=1e-4, rtol=1e-4)
    # 100 nats worse than at the start (beta * delta = 10), it has all but stopped
    far = redirect_loss(model, z, target, x_f=x_f, start=start - 100.0, npo_weight=10.0)
    assert (grad(far) - grad(plain)).norm() < 1e-3 * grad(ascent).norm()


def test_the_npo_push_makes_the_forgotten_images_worse_explained(setting):
    from unlearn_cli.methods.redirect import cross_entropy

    ckpt, plan = setting
    pushed, plain = run(ckpt, plan), run(ckpt, plan, npo_weight=0.0)
    assert pushed.lineage[-1]["hyperparameters"]["npo_weight"] == 10.0  # the default
    x = plan.forget.images.float() / 255

    def reconstruction(model):
        with torch.no_grad():
            return cross_entropy(model.decode_logits(model.encode(x)[0]), x).mean().item()

    assert reconstruction(pushed.model) > reconstruction(plain.model) + 1.0


def test_keep_training_uses_the_checkpoints_learning_rate(setting):
    from unlearn_cli.methods import get_method

    ckpt = setting[0]
    assert get_method("redirect").default_config(ckpt).retain_lr == ckpt.training["lr"]


def test_redirect_forgets_and_keeps_the_retained_data(small_models):
    from unlearn_cli.data.requests import Request
    from unlearn_cli.metrics import negative_elbo
    from unlearn_cli.workflows.forget import plan_forget

    ckpt = small_models[0]
    plan = plan_forget(ckpt, [Request("ones", "class", (1,))])
    child = run(ckpt, plan).model

    def elbo(model, data):
        return negative_elbo(model, data.images.float() / 255).mean().item()

    forget_rise = elbo(child, plan.forget) - elbo(ckpt.model, plan.forget)
    retain_rise = elbo(child, plan.retain) - elbo(ckpt.model, plan.retain)
    assert forget_rise > 20  # the forgotten digits are explained much worse
    assert retain_rise < 0.25 * forget_rise  # the retained ones hardly change


def test_same_seed_same_weights_and_recorded_settings(setting):
    ckpt, plan = setting
    a, b = run(ckpt, plan, seed=3), run(ckpt, plan, seed=3)
    for (name, p), q in zip(a.model.state_dict().items(), b.model.state_dict().values()):
        assert torch.equal(p, q), name
    entry = a.lineage[-1]
    assert entry["method"] == "redirect"
    assert entry["hyperparameters"]["seed"] == 3
    recorded = {f.name for f in dataclasses.fields(RedirectConfig)}
    assert set(entry["hyperparameters"]) == recorded


@pytest.mark.parametrize(
    "options, message",
    [
        ({"lr": 0.0}, "lr must be positive"),
        ({"params": "encoder"}, "use all or decoder"),
        ({"epochs": -1}, "epochs must be at least 0"),
        ({"retain_epochs": -0.5}, "retain_epochs must be at least 0"),
        ({"retain_lr": 0.0}, "retain_lr must be positive"),
        ({"npo_weight": -1.0}, "npo_weight must be at least 0"),
        ({"match_steps": -1}, "match_steps must be at least 0"),
    ],
)
def test_bad_settings_are_usage_errors(setting, options, message):
    from unlearn_cli.errors import UsageError
    from unlearn_cli.methods import get_method

    cfg = dataclasses.replace(get_method("redirect").default_config(setting[0]), **options)
    with pytest.raises(UsageError, match=message):
        cfg.validate()


def test_the_refit_alone_keeps_the_retained_elbo(small_models):
    """The full refit carries the posterior's variance into the new coordinates on average
    only, which costs this small, correlated 8-dimensional model a little of its retained
    -ELBO, until step 2's retain loss takes it back."""
    from unlearn_cli.data.requests import Request
    from unlearn_cli.metrics import negative_elbo
    from unlearn_cli.workflows.forget import plan_forget

    ckpt = small_models[0]
    plan = plan_forget(ckpt, [Request("ones", "class", (1,))])
    child = run(ckpt, plan, epochs=0, retain_epochs=0).model
    x = plan.retain.images.float() / 255
    before = negative_elbo(ckpt.model, x).mean().item()
    after = negative_elbo(child, x).mean().item()
    assert after < 1.03 * before


def test_params_all_trains_the_encoder_too(setting):
    """The redirect loss reads the decoder alone; the encoder still moves with the retain loss."""
    ckpt, plan = setting
    decoder_only = run(ckpt, plan, retain_epochs=0, match_steps=0)
    everything = run(ckpt, plan, retain_epochs=0, match_steps=0, params="all")
    assert everything.lineage[-1]["hyperparameters"]["params"] == "all"
    deep = [m for m in everything.model.encoder.modules() if isinstance(m, torch.nn.Linear)][0]
    same = [m for m in decoder_only.model.encoder.modules() if isinstance(m, torch.nn.Linear)][0]
    assert not torch.equal(deep.weight, same.weight)  # the refit alone moves only the head


def test_a_class_forget_reads_a_sample_of_the_class_and_records_how_many(setting, monkeypatch):
    from unlearn_cli.methods import redirect as redirect_module

    ckpt, plan = setting
    monkeypatch.setattr(redirect_module, "BANK_SIZE", 64)  # a bank about a third of D_r's size
    child = run(ckpt, plan, match_steps=0)
    read = child.lineage[-1]["stats"]["forget_images_read"]
    # the bank's share of D_r, of D_f: as dense a cover of the class's region as of D_r's
    assert read == math.ceil(64 / len(plan.retain) * len(plan.forget)) < len(plan.forget)
