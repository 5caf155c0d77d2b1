"""Fidelity and diversity of generated samples: k-nearest-neighbour precision and recall
(Kynkaanniemi, Karras, Laine, Lehtinen, Aila 2019, "Improved precision and recall metric for
assessing generative models"), in the judge's feature space.

Each set of features stands for a manifold: the union of balls around its points, each ball's
radius the distance to the point's k-th nearest neighbour in its own set. Precision is the share
of generated samples that fall inside the manifold of real images: an artefact that looks like
no real image falls outside, whichever class a closed-set judge would call it. Recall is the
share of real images inside the manifold of generated samples: a generator that draws a few
images well and nothing else has high precision and low recall.
"""

from __future__ import annotations

import torch

DEFAULT_K = 3  # the paper's choice: small k, tight manifolds, still robust to single outliers
CHUNK = 2048  # rows of a distance matrix at a time, so 10,000 x 10,000 never sits in memory


def kth_neighbour_radii(features: torch.Tensor, k: int = DEFAULT_K) -> torch.Tensor:
    """Distance from each row to its k-th nearest other row, (N,) float64."""
    features = features.double()
    if len(features) <= k:
        raise ValueError(f"k-NN radii need more than k={k} points, got {len(features)}")
    radii = []
    for rows in features.split(CHUNK):
        d = torch.cdist(rows, features)  # (chunk, N), the point itself at distance 0
        radii.append(d.kthvalue(k + 1, dim=1).values)  # k + 1: skip the point itself
    return torch.cat(radii)


def coverage_share(points: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor) -> float:
    """Share of `points` within radius of at least one centre."""
    points, centres = points.double(), centres.double()
    inside = 0
    for rows in points.split(CHUNK):
        d = torch.cdist(rows, centres)  # (chunk, M)
        inside += int((d <= radii.unsqueeze(0)).any(dim=1).sum())
    return inside / len(points)


def precision_recall(
    fake: torch.Tensor, real: torch.Tensor, k: int = DEFAULT_K
) -> tuple[float, float]:
    """(precision, recall) of generated features `fake` (N, F) against real features `real`.

    A manifold's balls shrink as its points multiply, so each manifold is built from the same
    number of points, the smaller count, taken as the leading rows (generated samples are
    independent draws; pass real images in an order unrelated to their content). Every point
    is then tested: all of `fake` for precision, all of `real` for recall.
    """
    n = min(len(fake), len(real))
    precision = coverage_share(fake, real[:n], kth_neighbour_radii(real[:n], k))
    recall = coverage_share(real, fake[:n], kth_neighbour_radii(fake[:n], k))
    return precision, recall


PIXEL_SIDE = 28  # larger images are average-pooled to 16 x 16 first: 12,288 CelebA values
# per image would make the distance matrices cost more than generating the samples


def pixel_features(images: torch.Tensor) -> torch.Tensor:
    """Images (N, C, H, W) in [0, 1] as flat rows for k-NN in pixel space, (N, C*H*W) or,
    above PIXEL_SIDE pixels a side, (N, C*16*16).

    A closed-set judge must map every image somewhere among its classes, so an artefact can
    land amid real digits in its feature space; in pixel space a saturated blob is far from
    every real image. Pixel precision is the judge-free check that samples look like data.
    """
    if images.shape[-1] > PIXEL_SIDE:
        images = torch.nn.functional.adaptive_avg_pool2d(images, 16)  # (N, C, 16, 16)
    return images.flatten(1)
