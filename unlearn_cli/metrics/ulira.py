"""A per-sample membership test against models retrained without the sample: U-LiRA (Hayes et
al. 2024, "Inexact unlearning needs more careful evaluations"), its offline variant.

For each forgotten sample, K models retrained without it give K losses (-ELBO): a one-Gaussian
null of what a model that never saw the sample makes of it. The unlearned model's loss on it,
measured in the null's standard deviations, is its z-score: how much better the model explains
the sample than retraining would. Held-out samples no model saw are scored the same way against
the same references. Forgetting as retraining does leaves the two sets of z-scores alike: an
AUC of 0.5, and as many forgotten samples past the never-seen ones' 95% threshold as never-seen
ones (5%).

Unlike the plain and the calibrated attacks of `metrics.privacy` (one threshold for all
samples, or one reference level per sample), the test knows per sample how far retrainings
spread, so a sample that every retraining explains alike counts for more when the model
explains it better.
"""

from __future__ import annotations

import torch

from unlearn_cli.metrics.privacy import fpr_threshold, mia_auc, tpr_at_fpr

STD_FLOOR = 1e-3  # nats: the least spread a z-score divides by (closer retrainings agree)
FPR = 0.05  # the one-sided test's level: past the never-seen samples' 95% threshold


def null(reference_nelbos: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The per-sample null of K references' losses (K, N): their mean and sample standard
    deviation (N,) each, float64, the deviation at least STD_FLOOR."""
    refs = torch.as_tensor(reference_nelbos, dtype=torch.float64)
    if refs.dim() != 2 or refs.shape[0] < 2:
        raise ValueError(
            f"a per-sample null needs the losses of 2 references at least, (K, N); got "
            f"shape {tuple(refs.shape)}"
        )
    return refs.mean(0), refs.std(0, correction=1).clamp_min(STD_FLOOR)


def z_scores(nelbo: torch.Tensor, reference_nelbos: torch.Tensor) -> torch.Tensor:
    """(N,) float64: (null mean - the model's loss) / null std per sample; positive where the
    model explains a sample better than models that never saw it."""
    mean, std = null(reference_nelbos)  # (N,), (N,)
    nelbo = torch.as_tensor(nelbo, dtype=torch.float64).flatten()
    if nelbo.shape != mean.shape:
        raise ValueError(f"{len(nelbo)} losses against references of {len(mean)} samples")
    return (mean - nelbo) / std


def ulira(
    forgotten_nelbo: torch.Tensor,
    forgotten_references: torch.Tensor,
    never_seen_nelbo: torch.Tensor,
    never_seen_references: torch.Tensor,
    never_seen_weights: torch.Tensor | None = None,
) -> dict[str, float]:
    """The test of forgotten samples against never-seen ones, from the model's losses (N,) and
    (M,) and the references' (K, N) and (K, M); `never_seen_weights` (M,) give the never-seen
    samples another mix (`class_mix_weights`), as in `metrics.privacy`.

    - `ulira_auc`: the AUC of the z-scores, forgotten against never-seen (0.5: alike);
    - `ulira_beyond_95`: the share of forgotten samples past the never-seen ones' 95% one-sided
      threshold (chance: 0.05);
    - `ulira_told_apart`: the share of forgotten samples an attacker can still tell apart from
      never-seen ones: those past that threshold less the never-seen ones past it too (the
      test's false alarms, at most 5%), at least 0. 0 is forgetting no test can tell from
      retraining's; 0.95 a model that still remembers every one;
    - `ulira_tpr_at_1fpr`: the share caught at 1% false positives (Carlini et al. 2022).
    """
    forgotten = z_scores(forgotten_nelbo, forgotten_references)  # (N,)
    never_seen = z_scores(never_seen_nelbo, never_seen_references)  # (M,)
    weights = (
        torch.ones(len(never_seen), dtype=torch.float64)
        if never_seen_weights is None
        else torch.as_tensor(never_seen_weights, dtype=torch.float64).flatten()
    )
    threshold = fpr_threshold(never_seen, FPR, weights)
    beyond = (forgotten > threshold).double().mean().item()
    false_alarms = (weights * (never_seen > threshold)).sum().item() / weights.sum().item()
    return {
        "ulira_auc": mia_auc(forgotten, never_seen, weights),
        "ulira_beyond_95": beyond,
        "ulira_told_apart": max(0.0, beyond - false_alarms),
        "ulira_tpr_at_1fpr": tpr_at_fpr(forgotten, never_seen, 0.01, weights),
    }
