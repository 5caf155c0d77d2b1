"""Privacy: did the generator forget? fratio for classes and attributes, membership inference
for individual samples."""

from __future__ import annotations

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


def mia_auc(member_scores: torch.Tensor, nonmember_scores: torch.Tensor) -> float:
    """AUC of a threshold attack that calls a sample a training member when its score is high.

    Rank-based (the Mann-Whitney U statistic over n_members * n_nonmembers pairs, ties counting
    one half), so it needs no threshold. With score = -negative ELBO, 0.5 means the forgotten
    samples look no more like training data than unseen test samples: the ideal after
    forgetting. Near 1 they are still remembered; well below 0.5 they stand out by being worse
    than unseen data, which is a signal too.
    """
    from scipy.stats import rankdata

    members = torch.as_tensor(member_scores, dtype=torch.float64).flatten()
    nonmembers = torch.as_tensor(nonmember_scores, dtype=torch.float64).flatten()
    m, n = len(members), len(nonmembers)
    if m == 0 or n == 0:
        raise ValueError(f"mia_auc needs members and non-members, got {m} and {n}")
    ranks = rankdata(torch.cat([members, nonmembers]).numpy(), method="average")  # 1-based
    u = ranks[:m].sum() - m * (m + 1) / 2  # pairs a member wins, ties counting one half
    return float(u / (m * n))
