"""uno (Mandal and Gottwald 2025) on tiny CPU models: one step against a by-hand computation for
each weighting, its stopping rule, what it refuses, and `unlearn forget --method uno` end to end.

The tiny judge calls every sample of the tiny VAE a 3, so nothing is judged forgotten and uno
stops at once; `biased_judge` is the same judge with its class-1 logit raised by 1, which calls
every sample a 1, so that uno steps until it runs out of steps."""

from __future__ import annotations

import copy
import dataclasses
import shutil

import pytest
import torch
from conftest import RecordingProgress, ids_of_class, parse_json
from torch import nn

from unlearn_cli.data.requests import training_set
from unlearn_cli.data.spec import DatasetSpec
from unlearn_cli.engine.checkpoint import load_checkpoint, read_metadata, save_checkpoint
from unlearn_cli.engine.device import seed_everything
from unlearn_cli.engine.train import make_loader
from unlearn_cli.errors import UsageError
from unlearn_cli.methods import configure, get_method
from unlearn_cli.methods import uno as uno_module
from unlearn_cli.methods.settings import UnoConfig
from unlearn_cli.methods.uno import STOP_FRACTION, Uno, class_indices, split_classes

CPU = torch.device("cpu")
B = 16  # images per batch, and latents in the fixed batch, of the by-hand step


@pytest.fixture(scope="module")
def vae(tiny_vae):
    return load_checkpoint(tiny_vae, "vae")


@pytest.fixture(scope="module")
def biased_judge(tiny_judge, tmp_path_factory):
    judge = load_checkpoint(tiny_judge, "judge")
    model = copy.deepcopy(judge.model)
    with torch.no_grad():
        model.head.bias[0] += 1.0  # the judge's class 0 is the digit 1 (classes 1, 3, 8)
    path = tmp_path_factory.mktemp("judge") / "biased.safetensors"
    return save_checkpoint(dataclasses.replace(judge, model=model), path)


@pytest.fixture(scope="module")
def split(vae):
    """(D_f, D_r): all the 1s, and all the 3s and 8s."""
    data = training_set(vae.dataset)
    ones = data.labels == 1
    return data.subset(torch.nonzero(ones)[:, 0]), data.subset(torch.nonzero(~ones)[:, 0])


@pytest.fixture(scope="module")
def one_batch_each(vae):
    """B of the 1s and B of the others: exactly one pair of batches, so one step."""
    data = training_set(vae.dataset)
    ones, others = torch.nonzero(data.labels == 1)[:, 0], torch.nonzero(data.labels != 1)[:, 0]
    return data.subset(ones[:B]), data.subset(others[:B])


def by_hand_step(vae, judge: nn.Module, forget, retain, w_orth, w_unif, seed=0, lr=1e-3):
    """The parameters after uno's first step, computed afresh: the same seeded draws (the fixed
    latents first, then the two batches, then the ELBO noise, forget batch first), the loss
    written out, and Adam's first step, which is lr * g / (|g| + eps) (m^ = g, v^ = g^2)."""
    g = seed_everything(seed)
    z = torch.randn(B, vae.model.latent_dim, generator=g)
    loaders = make_loader(forget, B, CPU, True, g), make_loader(retain, B, CPU, True, g)
    (x_f, _, _), (x_r, _, _) = next(zip(*loaders))
    torch.manual_seed(seed)
    model = copy.deepcopy(vae.model).train()
    params = list(model.parameters())
    p = torch.softmax(judge(model.decode(z)), dim=1).mean(dim=0)  # (3,): digits 1, 3, 8
    target = torch.tensor([0.0, 0.5, 0.5])  # the 1 forgotten, uniform over the 3 and the 8
    u = sum(p[k] * torch.log((p[k] + 1e-8) / (target[k] + 1e-8)) for k in range(3))
    loss_f = model.negative_elbo(x_f).sum() if w_orth else None
    loss_r = model.negative_elbo(x_r).sum()
    loss = loss_r + w_unif * u
    if loss_f is not None:
        g_f = torch.autograd.grad(loss_f + w_unif * u, params, create_graph=True)
        g_r = torch.autograd.grad(loss_r + w_unif * u, params, create_graph=True)
        g_f, g_r = torch.cat([t.flatten() for t in g_f]), torch.cat([t.flatten() for t in g_r])
        cosine = torch.dot(g_f, g_r) / (g_f.norm() * g_r.norm())
        loss = loss + w_orth * cosine**2
    grads = torch.autograd.grad(loss, params)
    return [(q - lr * d / (d.abs() + 1e-8)).detach() for q, d in zip(params, grads)]


@pytest.mark.parametrize("weighting, weights", [("logged", (0.0, 1000.0)), ("code", (1000.0, 0.0))])
def test_one_step_matches_the_by_hand_computation(
    vae, biased_judge, one_batch_each, weighting, weights
):
    forget, retain = one_batch_each
    assert set(retain.labels.tolist()) == {3, 8}  # so the target is uniform over both
    cfg = UnoConfig(batch_size=B, weighting=weighting, judge=str(biased_judge))
    result = Uno().unlearn(vae, forget, retain, cfg, CPU, RecordingProgress())
    assert result.stats["steps"] == 1 and result.stats["stopped"] == 0  # all judged 1: it steps
    judge = load_checkpoint(biased_judge, "judge").model.eval().requires_grad_(False)
    expected = by_hand_step(vae, judge, forget, retain, *weights)
    for name, got, want in zip(
        dict(result.model.named_parameters()), result.model.parameters(), expected
    ):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-6, msg=name)
    other = by_hand_step(vae, judge, forget, retain, *reversed(weights))  # the other weighting
    assert any(not torch.allclose(a, b, atol=1e-5) for a, b in zip(expected, other))
    assert all(  # every parameter moved, the encoder's too
        not torch.equal(a, b) for a, b in zip(vae.model.parameters(), result.model.parameters())
    )


class Brightness(nn.Module):
    """A judge of (1, 3, 8) that calls an image a 1 when its mean pixel is above `t`."""

    def __init__(self, t: float):
        super().__init__()
        self.t = t

    def forward(self, x):
        score = 200 * (x.mean((1, 2, 3)) - self.t)  # (B, 1, 28, 28) -> (B,)
        zero = torch.zeros_like(score)
        return torch.stack([score, zero, zero], dim=1)  # (B, 3)


def test_it_steps_while_the_judge_sees_the_class_and_stops_under_2_percent(vae, split, monkeypatch):
    forget, retain = split
    cfg = UnoConfig(batch_size=32, epochs=10, judge="brightness")
    z = torch.randn(32, vae.model.latent_dim, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        t = vae.model.decode(z).mean((1, 2, 3)).median().item()  # half the fixed batch is a 1
    judge = Brightness(t)
    monkeypatch.setattr(uno_module, "load_judge", lambda path, ckpt: judge)
    progress = RecordingProgress()
    result = Uno().unlearn(vae, forget, retain, cfg, CPU, progress)
    stats = result.stats
    assert stats["stopped"] == 1 and 1 <= stats["steps"] < 40  # 4 pairs of batches a pass
    assert stats["first_fraction"] >= 0.4 and stats["final_fraction"] < STOP_FRACTION
    seen = [float(s.split("judged forgotten ")[1].split("%")[0]) / 100 for s in progress.statuses]
    assert len(seen) == stats["steps"] and min(seen) >= STOP_FRACTION  # stepped only above 2%
    with torch.no_grad():  # the model returned is the one the judge passed
        share = (judge(result.model.decode(z)).argmax(1) == 0).float().mean().item()
    assert share == stats["final_fraction"] < STOP_FRACTION


def test_nothing_judged_forgotten_stops_before_any_step(vae, tiny_judge, split):
    forget, retain = split
    cfg = UnoConfig(judge=str(tiny_judge))  # the tiny judge calls every sample a 3
    result = Uno().unlearn(vae, forget, retain, cfg, CPU, RecordingProgress())
    assert result.stats == {
        "steps": 0.0,
        "first_fraction": 0.0,
        "final_fraction": 0.0,
        "stopped": 1.0,
    }
    assert all(torch.equal(a, b) for a, b in zip(vae.model.parameters(), result.model.parameters()))


def test_a_judge_that_always_sees_the_class_runs_out_of_steps(vae, biased_judge, split):
    forget, retain = split
    cfg = UnoConfig(batch_size=64, epochs=2, judge=str(biased_judge))
    progress = RecordingProgress()
    result = Uno().unlearn(vae, forget, retain, cfg, CPU, progress)
    assert progress.tasks == [("uno (logged weights)", 4)]  # 2 passes of min(2, 3) pairs
    assert result.stats["steps"] == 4 and result.stats["stopped"] == 0
    assert result.stats["final_fraction"] == 1.0


def test_only_whole_classes_are_forgotten():
    digits = DatasetSpec(name="mnist", classes=(1, 3, 8))
    labels = torch.tensor([8, 1, 3])
    assert class_indices(labels, digits).tolist() == [2, 0, 1]  # the judge's order
    forget, retain = (type("S", (), {"labels": torch.tensor(x)}) for x in ([1, 1], [3, 8, 8]))
    assert split_classes(forget, retain, digits) == ([0], [1, 2])
    a_one_and_a_three = type("S", (), {"labels": torch.tensor([1, 3])})
    with pytest.raises(UsageError, match="1 of the 2 samples to forget share their class"):
        split_classes(a_one_and_a_three, retain, digits)  # a 3 is kept
    celeba = DatasetSpec(name="celeba", root="/celeba")
    with pytest.raises(UsageError, match="attributes only"):
        class_indices(torch.zeros(2, 40, dtype=torch.uint8), celeba)


def test_individual_samples_are_refused_in_one_line(cli, tiny_vae, tiny_judge, tmp_path):
    out = tmp_path / "uno.safetensors"
    r = cli(
        "forget", tiny_vae, "--indices", ids_of_class(tiny_vae), "--method", "uno",
        "--judge", tiny_judge, "--out", out,
    )  # fmt: skip
    assert r.exit_code == 2, r.stderr
    assert "uno forgets whole classes" in r.stderr and "use redirect" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not out.exists()


def test_forget_with_uno_writes_a_child_whose_lineage_records_it(
    cli, tiny_vae, biased_judge, tmp_path
):
    out = tmp_path / "uno.safetensors"
    args = ("forget", tiny_vae, "--class", "1", "--method", "uno", "--judge", biased_judge)
    summary = parse_json(cli(*args, "--weighting", "code", "--out", out, "--json"))
    assert summary["out"] == str(out) and summary["method"] == "uno"
    (entry,) = read_metadata(out)["lineage"]
    assert entry["method"] == "uno"
    hyper = entry["hyperparameters"]
    assert hyper == {
        "lr": 1e-3,
        "batch_size": 128,
        "epochs": 1,
        "weighting": "code",
        "judge": str(biased_judge),
        "seed": 0,
    }
    # 118 ones and 182 others: one pair of 128-image batches a pass; the judge sees only 1s
    assert entry["stats"] == {
        "steps": 1.0,
        "first_fraction": 1.0,
        "final_fraction": 1.0,
        "stopped": 0.0,
    }


@pytest.mark.parametrize(
    "extra, message",
    [
        ((), "--judge is needed by uno, whose loss classifies the model's samples"),
        (("--judge", "VAE"), "is a vae checkpoint, but a judge classifier is needed here"),
    ],
)
def test_a_missing_or_wrong_judge_is_one_line_exit_2(cli, tiny_vae, tmp_path, extra, message):
    out = tmp_path / "uno.safetensors"
    extra = tuple(tiny_vae if a == "VAE" else a for a in extra)
    r = cli("forget", tiny_vae, "--class", "1", "--method", "uno", "--out", out, *extra)
    assert r.exit_code == 2, r.stderr
    assert message in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_the_row_label_names_the_weighting(vae):
    method = get_method("uno")
    assert method.title_for(configure(method, vae, {})) == "UNO (logged weights)"
    assert method.title_for(configure(method, vae, {"weighting": "code"})) == "UNO (code weights)"


def test_compare_hands_uno_the_experiments_judge(tiny_vae, biased_judge, tmp_path):
    from unlearn_cli.engine.progress import NullProgress
    from unlearn_cli.workflows.experiment import load_experiment
    from unlearn_cli.workflows.runner import Runner

    path = tmp_path / "uno.yaml"
    path.write_text(
        f"# unlearn compare uno.yaml\noriginal: {tiny_vae}\njudge: {{checkpoint: {biased_judge}}}\n"
        "forget: {requests: [{id: ones, class: 1}]}\n"
        "methods: [uno, {method: uno, label: own, judge: own.safetensors}]\n"
        f"out_dir: {tmp_path / 'runs'}\n"
    )
    exp = load_experiment(path)
    assert exp.methods[1].options["judge"] == str(tmp_path / "own.safetensors")  # by the file
    runner = Runner(exp, CPU, NullProgress())
    original, key = runner.original(0)
    judge, _ = runner.judge()
    child, _ = runner.unlearned(original, key, exp.methods[0], 0, judge)
    assert child.lineage[-1]["hyperparameters"]["judge"] == str(biased_judge)
    shutil.copy(biased_judge, tmp_path / "own.safetensors")
    child, _ = runner.unlearned(original, key, exp.methods[1], 0, judge)  # its own, kept
    assert child.lineage[-1]["hyperparameters"]["judge"] == str(tmp_path / "own.safetensors")
