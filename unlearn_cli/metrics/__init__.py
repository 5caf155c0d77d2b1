"""Pure metric functions: did the generator forget (fratio, membership inference), and what did
it cost in quality (IS, FID, ELBO).

Every function takes models and images (a tensor, or an iterable of batches) and returns
numbers; nothing here loads files, prints or knows about the command line.
"""

from unlearn_cli.metrics.privacy import fratio, mia_auc
from unlearn_cli.metrics.utility import fid, inception_score, negative_elbo

__all__ = ["fratio", "mia_auc", "inception_score", "fid", "negative_elbo"]
