"""Pure metric functions: did the generator forget (fratio, membership inference), and what did
it cost in quality (IS, FID, precision and recall, ELBO).

Every function takes models and images (a tensor, or an iterable of batches), or judge outputs
computed beforehand (`judge_outputs`, one pass for all three judge metrics), and returns
numbers; nothing here loads files, prints or knows about the command line.
"""

from unlearn_cli.metrics.fidelity import precision_recall
from unlearn_cli.metrics.judge import judge_outputs
from unlearn_cli.metrics.privacy import fratio, fratio_of_logits, mia_auc
from unlearn_cli.metrics.utility import (
    fid,
    fid_of_features,
    inception_score,
    inception_score_of_logits,
    negative_elbo,
)

__all__ = [
    "fratio",
    "fratio_of_logits",
    "mia_auc",
    "inception_score",
    "inception_score_of_logits",
    "fid",
    "fid_of_features",
    "negative_elbo",
    "judge_outputs",
    "precision_recall",
]
