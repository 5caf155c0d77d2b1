"""Privacy: did the generator forget? fratio for classes and attributes, membership inference
for individual samples."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from unlearn_cli.metrics.judge import Images, predict


def fratio(judge: nn.Module, images: Images, targets: list[int], batch_size: int = 500) -> float:
    """Share of `images` the judge assigns to any of the class indices `targets`.

    The paper's feature ratio (its Appendix A): generate N samples, classify each, count the
    forgotten class. 0 is a generator that never produces it, 1 one that produces nothing else.
    """
    if not targets:
        raise ValueError("fratio needs at least one target class index")
    return share_in(predict(judge, images, batch_size), targets)


def fratio_of_logits(logits: torch.Tensor, targets: list[int]) -> float:
    """fratio from judge logits (N, classes) computed beforehand."""
    if not targets:
        raise ValueError("fratio needs at least one target class index")
    return share_in(logits.argmax(1).cpu(), targets)


def share_in(predicted: torch.Tensor, targets: list[int]) -> float:
    if len(predicted) == 0:
        raise ValueError("fratio needs at least one image")
    hits = torch.isin(predicted, torch.tensor(targets, dtype=torch.long))  # (N,)
    return hits.double().mean().item()


def wilson_interval(hits: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a share `hits` / `n` (95% for z = 1.96): the interval of
    the shares p whose normal test at level z does not reject hits / n.

    Unlike the normal approximation p +- z sqrt(p(1 - p) / n), it stays inside [0, 1] and does
    not collapse to a point at p = 0, which is where a forgotten class's fratio sits: 0 of
    10,000 samples is an interval [0, 0.00038], not a certainty.
    """
    if n < 1 or not 0 <= hits <= n:
        raise ValueError(f"wilson_interval needs 0 <= hits <= n and n >= 1, got {hits} of {n}")
    p, z2 = hits / n, z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def mia_auc(
    member_scores: torch.Tensor,
    nonmember_scores: torch.Tensor,
    nonmember_weights: torch.Tensor | None = None,
) -> float:
    """AUC of a threshold attack that calls a sample a training member when its score is high.

    The Mann-Whitney U statistic: the share of (member, non-member) pairs in which the member
    scores higher, ties counting one half, so it needs no threshold. `nonmember_weights` (one
    per non-member, >= 0; `class_mix_weights`) weigh each pair by its non-member's weight, so
    the non-members can stand for another mix than their own; none weighs them equally.

    With score = -negative ELBO, 0.5 means the forgotten samples look no more like training
    data than unseen test samples: the ideal after forgetting. Near 1 they are still
    remembered; well below 0.5 they stand out by being worse than unseen data, which is a
    signal too.
    """
    members = torch.as_tensor(member_scores, dtype=torch.float64).flatten().numpy()
    nonmembers = torch.as_tensor(nonmember_scores, dtype=torch.float64).flatten().numpy()
    m, n = len(members), len(nonmembers)
    if m == 0 or n == 0:
        raise ValueError(f"mia_auc needs members and non-members, got {m} and {n}")
    if nonmember_weights is None:
        weights = np.ones(n)
    else:
        weights = torch.as_tensor(nonmember_weights, dtype=torch.float64).flatten().numpy()
        if weights.shape != (n,) or not (weights >= 0).all() or not weights.sum() > 0:
            raise ValueError(
                f"mia_auc needs one weight >= 0 per non-member ({n}), not all 0; got "
                f"{weights.shape[0]}"
            )
    order = np.argsort(nonmembers, kind="stable")
    sorted_scores = nonmembers[order]  # (n,)
    below = np.concatenate([[0.0], np.cumsum(weights[order])])  # (n + 1,) weight of the first k
    lo = np.searchsorted(sorted_scores, members, side="left")  # (m,) non-members below
    hi = np.searchsorted(sorted_scores, members, side="right")  # (m,) ... or equal
    wins = below[lo] + 0.5 * (below[hi] - below[lo])  # (m,) weight a member beats, ties half
    return float(wins.sum() / (m * below[-1]))


def tpr_at_fpr(
    member_scores: torch.Tensor,
    nonmember_scores: torch.Tensor,
    fpr: float = 0.01,
    nonmember_weights: torch.Tensor | None = None,
) -> float:
    """Share of members an attack catches when it may wrongly accuse at most `fpr` of the
    non-members: the threshold is the smallest score that at most `fpr` of the (weighted)
    non-members exceed, and a member counts when it scores above it.

    Carlini et al. 2022 ("Membership inference attacks from first principles") report this
    rather than the AUC alone: an average over all thresholds hides the few samples that leak,
    which are the ones a deletion request is about. Chance is `fpr`.
    """
    members = torch.as_tensor(member_scores, dtype=torch.float64).flatten()
    nonmembers = torch.as_tensor(nonmember_scores, dtype=torch.float64).flatten()
    if len(members) == 0 or len(nonmembers) == 0:
        raise ValueError("tpr_at_fpr needs members and non-members")
    if not 0 <= fpr < 1:
        raise ValueError(f"fpr must be in [0, 1), got {fpr}")
    return (members > fpr_threshold(nonmembers, fpr, nonmember_weights)).double().mean().item()


def fpr_threshold(
    nonmember_scores: torch.Tensor, fpr: float, nonmember_weights: torch.Tensor | None = None
) -> float:
    """The smallest score that at most `fpr` of the (weighted) non-members exceed: an attack
    that calls every score above it a member wrongly accuses at most `fpr` of them (-inf when
    all of them may be accused)."""
    nonmembers = torch.as_tensor(nonmember_scores, dtype=torch.float64).flatten()
    weights = (
        torch.ones(len(nonmembers), dtype=torch.float64)
        if nonmember_weights is None
        else torch.as_tensor(nonmember_weights, dtype=torch.float64).flatten()
    )
    order = nonmembers.argsort(descending=True)
    above = torch.cumsum(weights[order], 0) / weights.sum()  # (n,) share at or above each score
    # the highest non-member scores whose share stays within fpr may lie above the threshold
    allowed = int((above <= fpr + 1e-12).sum())
    return nonmembers[order][allowed].item() if allowed < len(order) else -math.inf


def calibrated_scores(nelbo: torch.Tensor, shadow_nelbos: list[torch.Tensor]) -> torch.Tensor:
    """Membership scores calibrated per sample (the offline variant of LiRA, Carlini et al.
    2022, with a difference instead of a fitted Gaussian): how much better the model explains a
    sample than reference models that never saw it do, -(nelbo - mean of the shadows' nelbo).

    The plain attack's score, -nelbo, mostly says how easy an image is (a thin 1 is explained
    better than any 8, member or not); subtracting what models that never saw it achieve leaves
    what training on it added.
    """
    if not shadow_nelbos:
        raise ValueError("calibrated_scores needs at least one shadow model's scores")
    reference = torch.stack([s.double() for s in shadow_nelbos]).mean(0)  # (N,)
    return -(nelbo.double() - reference)


def class_mix_weights(member_labels: torch.Tensor, nonmember_labels: torch.Tensor) -> torch.Tensor:
    """Weights (N_nonmembers,) float64 that give each class of non-members the share it has
    among the members: w = (members of its class / members) / (non-members of its class).

    They sum to 1; a non-member of a class no member has weighs 0. Unweighted, a test set of
    the members' classes would score the members against its own class mix, and the AUC would
    then measure how easily the ELBO tells one class from another as well as membership.
    """
    member_labels, nonmember_labels = member_labels.flatten(), nonmember_labels.flatten()
    classes, member_counts = member_labels.unique(return_counts=True)  # (K,), (K,)
    weights = torch.zeros(len(nonmember_labels), dtype=torch.float64)
    for c, count in zip(classes.tolist(), member_counts.tolist()):
        mask = nonmember_labels == c  # (N,)
        if not mask.any():
            raise ValueError(
                f"class {c} has {count} member(s) and no non-member, so the non-members "
                "cannot match the members' class mix"
            )
        weights[mask] = count / len(member_labels) / mask.sum().item()
    return weights
