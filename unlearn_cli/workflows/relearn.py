"""The relearning attack: fine-tune a copy of a forgetting model briefly and see whether the
forgotten content comes back, beside the retrained reference under the same fine-tuning
(Lynch et al. 2024, Hu et al. 2024, here for a generator).

Two attacks of the same number of steps at the model's own training learning rate:

- few-shot: the training loss on FEW_SHOT forgotten images, drawn with the evaluation's seed;
- benign: the training loss on retained training images only.

A model whose forgetting only moved the forgotten content out of the prior's reach gets it
back in a few steps; a retrained model has to learn it from the few images. After each, the
forgotten class's fratio (with a judge and a class or attribute target), or, for individual
samples, their -ELBO and the membership-inference AUC, for the model and for the reference.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from unlearn_cli.engine.checkpoint import Checkpoint
from unlearn_cli.engine.train import TrainConfig, make_loader, to_device
from unlearn_cli.methods.steps import endless, sample_of
from unlearn_cli.metrics import fratio_of_logits, judge_outputs, mia_auc, negative_elbo
from unlearn_cli.workflows.image_sets import DataImages, EvalSets, Generated, subset
from unlearn_cli.workflows.targets import Target

FEW_SHOT = 64  # forgotten images the attacker holds: a handful, as a relearning attack assumes
ATTACKS = ("fewshot", "benign")
RELEARN_KEYS = tuple(  # what each attack measures, on the model and on the reference
    f"relearn_{metric}_{attack}{suffix}"
    for metric in ("fratio", "forget_elbo", "mia_auc")
    for suffix in ("", "_reference")
    for attack in ATTACKS
)


def finetune(
    model: nn.Module, data, steps: int, lr: float, seed: int, device: torch.device
) -> nn.Module:
    """A copy of `model` after `steps` Adam steps of its training loss on batches of
    FEW_SHOT images of `data`, shuffled and noised from `seed`; `model` is left as it was."""
    tuned = copy.deepcopy(model).to(device).train()
    opt = torch.optim.Adam(tuned.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    batches = endless(make_loader(data, FEW_SHOT, device, True, generator))
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        for _ in range(steps):
            x, _, _ = to_device(next(batches), device)
            loss = tuned.loss(x)  # type: ignore[operator]
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return tuned.eval()


def attack_sets(sets: EvalSets, seed: int):
    """(few-shot forgotten images, retained training images), or None without a forget set."""
    if sets.forget is None or len(sets.forget) == 0:
        return None
    generator = torch.Generator().manual_seed(seed)
    few = sample_of(sets.forget, FEW_SHOT, generator)
    retained = subset(sets.train, ~torch.isin(sets.train.ids, sets.forget.ids))
    return few, retained


def relearn_metrics(
    vae: Checkpoint,
    reference: Checkpoint | None,
    judge: Checkpoint | None,
    tgt: Target | None,
    sets: EvalSets,
    steps: int,
    samples: int,
    seed: int,
    batch_size: int,
    device: torch.device,
) -> dict:
    """privacy keys of the attack: relearn_fratio_{fewshot,benign} (a judge and a class or
    attribute target), or relearn_forget_elbo_* and relearn_mia_auc_* (individual samples),
    each also "..._reference"; and relearn_gap, the few-shot attack's fratio (samples: MIA
    AUC) on the model minus on the reference, None without a reference."""
    from unlearn_cli.workflows.evaluate import judge_indices

    out: dict = {"relearn_steps": steps, **dict.fromkeys(RELEARN_KEYS), "relearn_gap": None}
    picked = attack_sets(sets, seed)
    if picked is None:
        return out
    few, retained = picked
    indices = judge_indices(judge, tgt) if judge is not None else None
    by_samples = tgt is not None and tgt.kind == "samples"
    lr = TrainConfig.of(vae.training).lr  # the original learning rate

    def nelbo(model: nn.Module, data) -> torch.Tensor:
        return negative_elbo(model, DataImages(data, batch_size, device), batch_size, seed)

    def score(model: nn.Module, name: str) -> dict:
        if by_samples:
            assert sets.forget is not None  # attack_sets checked it
            members = nelbo(model, sets.forget)
            result = {f"relearn_forget_elbo_{name}": members.mean().item()}
            if sets.nonmember_mask is not None:
                nonmembers = nelbo(model, sets.test)[sets.nonmember_mask]
                auc = mia_auc(-members, -nonmembers, sets.nonmember_weights)
                result[f"relearn_mia_auc_{name}"] = auc
            return result
        if indices is None or judge is None:
            return {}
        fakes = Generated(model, samples, seed, batch_size, device)
        logits, _ = judge_outputs(judge.model.to(device).eval(), fakes, batch_size)
        return {f"relearn_fratio_{name}": fratio_of_logits(logits, indices)}

    models = {"": vae} if reference is None else {"": vae, "_reference": reference}
    for suffix, ckpt in models.items():
        for attack, data in zip(ATTACKS, (few, retained)):
            tuned = finetune(ckpt.model, data, steps, lr, seed, device)
            out.update({f"{k}{suffix}": v for k, v in score(tuned, attack).items()})
    key = "relearn_mia_auc_fewshot" if by_samples else "relearn_fratio_fewshot"
    if out.get(key) is not None and out.get(f"{key}_reference") is not None:
        out["relearn_gap"] = out[key] - out[f"{key}_reference"]
    return out
