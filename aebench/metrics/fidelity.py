"""Sample-quality metrics beside FID, from two feature sets of the same backbone (see backbones.py):
the features of generated samples (n_g, d) and of reference images (n_r, d).

KID (Binkowski et al. 2018, "Demystifying MMD GANs"): the unbiased estimate of the squared MMD with
the cubic polynomial kernel k(x, y) = (x.y / d + 1)^3,

    MMD^2 = sum_{i!=j} k(g_i, g_j) / (m(m-1)) + sum_{i!=j} k(r_i, r_j) / (m(m-1)) - 2 sum_{i,j} k(g_i, r_j) / m^2,

averaged over `kid_subsets` (100) random pairs of subsets of size m = min(1000, n_g, n_r), each drawn
without replacement; kid_std is the standard deviation over the subsets. Unlike FID it is unbiased
in the sample size, and it can be slightly negative when the two sets come from one distribution.
Unbiased only for independent sets: a set scored against itself gets about -(2/m) (mean k(x, x) -
mean k(x, y)), not 0, because the cross term then pairs each point with itself.
The estimator and the subsets are torch-fidelity's kid_features_to_metric (a numpy RandomState(seed)
drawing each pair of subsets in turn; kid_std is numpy's population std), computed here in float64
with the cube taken as two multiplications: the library's `** 3` costs about 77 ns per kernel entry on
this CPU (3 s per smoke run, about 25 s per run at m = 1000), and tests/test_fidelity.py checks that
the two give the same numbers.

Precision and recall (Kynkaanniemi et al. 2019, "Improved Precision and Recall Metric for Assessing
Generative Models"), k = 3: the reference manifold is the union of balls around each reference
feature whose radius is the distance to its k-th nearest reference neighbour; precision is the
fraction of generated features inside it (fidelity), recall the fraction of reference features
inside the generated manifold built the same way (diversity: it drops with missing modes).

Density and coverage (Naeem et al. 2020, "Reliable Fidelity and Diversity Metrics for Generative
Models"), k = 5: density = (1 / (k n_g)) sum_j #{i : g_j in B(r_i, NND_k(r_i))}, about 1 when the
two sets match (above 1 for samples crowded on dense reference regions); coverage is the fraction of
reference features whose ball holds at least one generated feature. Both use only reference balls,
so they are robust to generated outliers.

Computed by prdc (the authors of Naeem et al.), which uses one k for all four numbers: it is called
with k = 3 for precision/recall and with k = 5 for density/coverage. Its balls are open (a point on
a radius is outside). Each call builds three distance matrices
(n_g^2, n_r^2 and n_g n_r float64): O((n_g + n_r)^2 d) time, O((n_g + n_r)^2) memory.
"""
from __future__ import annotations

import contextlib
import io

import numpy as np
import torch

from aebench.metrics.declarations import COVERAGE, DENSITY, KID, KID_STD, PRECISION, RECALL

METRICS = (KID, KID_STD, PRECISION, RECALL, DENSITY, COVERAGE)  # what this module computes

PR_K = 3  # Kynkaanniemi et al.'s neighbourhood size for precision and recall
DC_K = 5  # Naeem et al.'s for density and coverage
KID_SUBSETS = 100  # Binkowski et al. and torch-fidelity
KID_SUBSET_SIZE = 1000

KEYS = tuple(m.name for m in METRICS)  # kid, kid_std, precision, recall, density, coverage


def _as_features(x: np.ndarray | torch.Tensor, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"{name} features must be an (n, d) array, got shape {x.shape}")
    return x


def _check_sizes(generated: np.ndarray, reference: np.ndarray, subset_size: int) -> None:
    if generated.shape[1] != reference.shape[1]:
        raise ValueError(f"generated and reference features differ in dimension: "
                         f"{generated.shape[1]} vs {reference.shape[1]}")
    smaller = min(len(generated), len(reference))
    if not 2 <= subset_size <= smaller:
        raise ValueError(f"KID subset size must be between 2 and the smaller feature set ({smaller}), "
                         f"got {subset_size}")
    k = max(PR_K, DC_K)
    # The k-th neighbour other than the point itself needs k < n; prdc also partitions at index k+1,
    # so it needs one point more than that.
    if smaller < k + 2:
        raise ValueError(f"precision/recall/density/coverage use up to k = {k} nearest neighbours and need "
                         f"at least {k + 2} feature vectors in each set, got {len(generated)} generated and "
                         f"{len(reference)} reference")


def _cubic_kernel(a: np.ndarray, b: np.ndarray, gamma: float) -> np.ndarray:
    k = a @ b.T
    k *= gamma
    k += 1.0
    cube = k * k
    cube *= k
    return cube


def _kid(generated: np.ndarray, reference: np.ndarray, subsets: int, subset_size: int, seed: int) -> tuple[float, float]:
    # float64: the estimator subtracts sums of ~m^2 kernel values, which cancel when the sets match.
    rng, m, gamma = np.random.RandomState(seed), subset_size, 1.0 / generated.shape[1]
    values = np.empty(subsets)
    for i in range(subsets):
        x = generated[rng.choice(len(generated), m, replace=False)]
        y = reference[rng.choice(len(reference), m, replace=False)]
        k_xx, k_yy = _cubic_kernel(x, x, gamma), _cubic_kernel(y, y, gamma)
        within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
        values[i] = within - 2.0 * _cubic_kernel(x, y, gamma).sum() / (m * m)
    return float(values.mean()), float(values.std())


def _prdc(generated: np.ndarray, reference: np.ndarray, k: int) -> dict[str, float]:
    from prdc import compute_prdc

    with contextlib.redirect_stdout(io.StringIO()):  # prdc prints the two set sizes on every call
        scores = compute_prdc(real_features=reference, fake_features=generated, nearest_k=k)
    return {name: float(value) for name, value in scores.items()}


def fidelity_scores(generated: np.ndarray | torch.Tensor, reference: np.ndarray | torch.Tensor, seed: int = 0,
                    kid_subsets: int = KID_SUBSETS, kid_subset_size: int | None = None) -> dict[str, float]:
    """kid, kid_std, precision, recall, density and coverage of generated features against reference ones.

    kid_subset_size defaults to min(1000, n_generated, n_reference); seed fixes KID's subsets (the
    other four are deterministic). All NaN when either set is not finite (a diverged model's samples),
    as FID is. Raises ValueError for sets too small for the subsets or the nearest neighbours."""
    generated = _as_features(generated, "generated")
    reference = _as_features(reference, "reference")
    if kid_subset_size is None:
        kid_subset_size = min(KID_SUBSET_SIZE, len(generated), len(reference))
    _check_sizes(generated, reference, kid_subset_size)
    if kid_subsets < 1:
        raise ValueError(f"kid_subsets must be at least 1, got {kid_subsets}")
    if not (np.isfinite(generated).all() and np.isfinite(reference).all()):
        return dict.fromkeys(KEYS, float("nan"))

    kid, kid_std = _kid(generated, reference, kid_subsets, kid_subset_size, seed)
    pr = _prdc(generated, reference, PR_K)
    dc = _prdc(generated, reference, DC_K)
    return {KID.name: kid, KID_STD.name: kid_std, PRECISION.name: pr["precision"], RECALL.name: pr["recall"],
            DENSITY.name: dc["density"], COVERAGE.name: dc["coverage"]}
