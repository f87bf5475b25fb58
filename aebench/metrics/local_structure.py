"""Local structure: does the latent space keep the images' neighbourhoods? (the SWAE paper's claim)

trustworthiness (Venna & Kaski 2001, the formula of sklearn.manifold.trustworthiness): 1 minus a
rank-weighted count of latent-space k-nearest neighbours that are NOT among the image-space k nearest
("intrusions"). continuity: the same score with the roles swapped, penalising image-space neighbours
that the latent space pushes apart ("extrusions"). Both are in [0, 1], 1 for any isometry such as
the identity. Euclidean distances on the flattened pixels and on the latents, on a fixed subset of
the test split.

Our own few lines rather than scikit-learn's function: images such as the digits have many exactly
equal distances, and scikit-learn ranks them from BLAS products whose last bits depend on the number
of threads, so the same checkpoint scored in another process could differ in the 5th digit. Here
distances come from scipy's pdist (same bits whatever the threads) and ties go to the lower index.
"""
from __future__ import annotations

import numpy as np
import torch
from scipy.spatial.distance import pdist, squareform

from aebench.metrics.declarations import CONTINUITY, TRUSTWORTHINESS

METRICS = (TRUSTWORTHINESS, CONTINUITY)  # what this module computes (declared in declarations.py: torch-free)


def fixed_subset(n_total: int, n: int, seed: int = 0) -> torch.Tensor:
    """Indices of a seeded random subset of n (all of them when n >= n_total), in increasing order.

    Random rather than the first n: MNIST's test file is ordered (its first half is the easier one)."""
    if n >= n_total:
        return torch.arange(n_total)
    return torch.randperm(n_total, generator=torch.Generator().manual_seed(seed))[:n].sort().values


def _flat(a) -> np.ndarray:
    a = a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
    return a.reshape(len(a), -1).astype(np.float64)


def _check_k(n: int, k: int) -> None:
    if not 1 <= k < n / 2:  # scikit-learn's own requirement, said in our words
        raise ValueError(f"neighbourhood size k={k} needs at least {2 * k + 1} points, got {n}")


def _distances(a: np.ndarray) -> np.ndarray:
    d = squareform(pdist(a))
    np.fill_diagonal(d, np.inf)  # a point is not its own neighbour
    return d


def _trustworthiness(d_high: np.ndarray, d_low: np.ndarray, k: int) -> float:
    """From the distance matrices of the original (high) and the embedded (low) space."""
    n = len(d_high)
    _check_k(n, k)
    order_high = np.argsort(d_high, axis=1, kind="stable")
    rank_high = np.empty_like(order_high)
    rank_high[np.arange(n)[:, None], order_high] = np.arange(1, n + 1)  # 1 = nearest
    neighbours_low = np.argsort(d_low, axis=1, kind="stable")[:, :k]
    penalty = np.maximum(rank_high[np.arange(n)[:, None], neighbours_low] - k, 0).sum()
    return float(1.0 - penalty * 2.0 / (n * k * (2.0 * n - 3.0 * k - 1.0)))


def neighbourhood_scores(x, z, k: int = 10) -> tuple[float, float]:
    """(trustworthiness, continuity) of the embedding z of the images x, sharing the distance matrices."""
    d_x, d_z = _distances(_flat(x)), _distances(_flat(z))
    return _trustworthiness(d_x, d_z, k), _trustworthiness(d_z, d_x, k)


def trustworthiness_score(x, z, k: int = 10) -> float:
    return _trustworthiness(_distances(_flat(x)), _distances(_flat(z)), k)


def continuity_score(x, z, k: int = 10) -> float:
    return _trustworthiness(_distances(_flat(z)), _distances(_flat(x)), k)
