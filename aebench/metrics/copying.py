"""Data-copying: do generated samples sit closer to the training set than fresh data does?

A model that memorises its training images can score well on FID and reconstruction while only
handing its training set back. Both statistics here compare, in whatever space the caller passes
(raw pixels, or the FID backbone's features), each point's distance to its nearest training point:

nn_train_ratio   median nearest-training-point distance of the generated samples, divided by the
                 same median for held-out test points. About 1 for a model that generalises,
                 well below 1 for one that copies, above 1 for one that underfits.
copying_ct       C_T of Meehan, Chaudhuri & Dasgupta, "A Non-Parametric Test to Detect Data-Copying
                 in Generative Models", AISTATS 2020. The space is cut into cells by k-means on the
                 training points; in each cell a Mann-Whitney U test compares the test points' and the
                 generated points' distances to the cell's nearest training point, z-scored under the
                 null hypothesis (both samples from the same distribution):

                     U   = #{(i, j): d(q_j) > d(p_i)}   (ties count 1/2), q generated, p test
                     Z_U = (U - m n / 2) / sqrt(m n (m + n + 1) / 12)

                 with m generated and n test points in the cell. C_T averages Z_U over the cells that
                 hold more than tau * m_total generated points, weighted by each cell's share of the
                 test points. Under the null C_T is about N(0, sum of squared weights); C_T << 0 means
                 data-copying, C_T >> 0 underfitting. Cells average out, so a model may copy in some
                 regions and underfit in others: copying_ct_cells gives the per-cell picture.

Our definition against the authors' code (github.com/casey-meehan/data-copying, commit a0ba2db,
data_copying_tests.py), written anew here:
- Z_U is the paper's: no shift. Their Zu() (lines 36-39) subtracts 0.5 from the mean as a "continuity
  correction", which moves every Z_U up by 0.5 / sd rather than towards 0 (under 0.02 for cells of
  20 and more points on each side).
- Distances are to the nearest training point IN THE SAME CELL, as their Zu_cells() does (line 76/83).
- A cell with generated samples counts only when its generated share is strictly above tau, as their
  C_T() does (line 135); a cell without test or training points is an error, as there (lines 78-79).

Defaults and their source (the authors give no defaults in a signature; these are what their
experiment scripts pass, same commit):
- tau = 20 / m: a cell needs MORE than 20 generated samples. Every experiment: moons_experiments.py
  lines 122-124 ("tau is set to only accept cells with >20 samples"), MNIST_vae_test.py line 212,
  MNIST_kde_test.py line 128, BigGan_test.py line 159.
- n_cells = 5: moons_experiments.py line 32 (k = 5), the experiment whose sample sizes match this
  suite's (2000 training, 1000 test and 1000 generated points; mnist-5k's quick profile has 3500, 1000
  and 1000). Their MNIST experiments use 50 cells (MNIST_vae_test.py line 99, MNIST_kde_test.py line
  35) with 10 000 test and 10 000 generated points, i.e. 200 of each per cell; with this suite's
  500-1000 generated images 50 cells would leave most cells under the 20-sample threshold. Their
  ImageNet experiment uses 3 cells per class (BigGan_test.py line 83).
- k-means: scikit-learn's KMeans, seeded here (their scripts leave it unseeded) with n_init=10 so
  the cells, hence C_T, are a deterministic function of the inputs and the seed.

Nearest neighbours are exact Euclidean (scikit-learn NearestNeighbors, brute force in float64).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import mannwhitneyu
from sklearn.cluster import KMeans
from sklearn.neighbors import NearestNeighbors

from aebench.metrics.declarations import COPYING_CT, NN_TRAIN_RATIO

METRICS = (NN_TRAIN_RATIO, COPYING_CT)  # what this module computes (declared in declarations.py: torch-free)

DEFAULT_N_CELLS = 5  # the authors' moons experiment (see the module docstring)
MIN_GENERATED_PER_CELL = 20  # the authors' tau = 20 / m: a cell counts with MORE than 20 generated points
KMEANS_N_INIT = 10


# ---------------------------------------------------------------- inputs


def _points(a, name: str) -> np.ndarray:
    """(n, d) float64 from an array of n points of any shape (images are flattened)."""
    a = np.asarray(a, dtype=np.float64)
    if a.ndim < 2:
        raise ValueError(f"{name} must be an array of points, shape (n, d) or (n, ...), got shape {a.shape}")
    a = a.reshape(len(a), -1)
    if len(a) == 0 or a.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {a.shape})")
    if not np.isfinite(a).all():
        raise ValueError(f"{name} holds NaN or infinite values")
    return a


def _same_dimension(**arrays: np.ndarray) -> None:
    dims = {name: a.shape[1] for name, a in arrays.items()}
    if len(set(dims.values())) > 1:
        raise ValueError(f"all point sets must have the same dimension, got {dims}")


# ---------------------------------------------------------------- nearest training point


def _nearest(queries: np.ndarray, train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distances, indices) of each query's nearest training point, exact Euclidean."""
    nn = NearestNeighbors(n_neighbors=1, algorithm="brute", metric="euclidean").fit(train)
    distances, indices = nn.kneighbors(queries)
    return distances[:, 0], indices[:, 0]


def nearest_training_indices(samples, train) -> tuple[np.ndarray, np.ndarray]:
    """(indices, distances): for each sample, the index of its nearest training point and the distance.

    For figures that show each generated image beside its nearest training image."""
    samples, train = _points(samples, "samples"), _points(train, "train")
    _same_dimension(samples=samples, train=train)
    distances, indices = _nearest(samples, train)
    return indices, distances


def nn_train_ratio(samples, train, test) -> float:
    """median_j d(sample_j, train) / median_i d(test_i, train), d the distance to the nearest training point.

    < 1: the samples sit closer to the training set than fresh data from the same distribution does."""
    samples, train, test = _points(samples, "samples"), _points(train, "train"), _points(test, "test")
    _same_dimension(samples=samples, train=train, test=test)
    test_median = float(np.median(_nearest(test, train)[0]))
    if test_median == 0.0:  # the ratio has no scale: test points duplicate training points
        raise ValueError("the median distance from the test points to the training set is 0: "
                         "at least half the test points also occur in the training set")
    return float(np.median(_nearest(samples, train)[0])) / test_median


# ---------------------------------------------------------------- C_T


def mann_whitney_z(generated_distances, test_distances) -> float:
    """Z_U of the paper: (U - m n / 2) / sqrt(m n (m + n + 1) / 12), U = #{generated > test} (ties 1/2).

    Negative when the generated points are nearer the training set than the test points."""
    q = np.asarray(generated_distances, dtype=np.float64).ravel()
    p = np.asarray(test_distances, dtype=np.float64).ravel()
    if len(q) == 0 or len(p) == 0:
        raise ValueError(f"Z_U needs at least one distance on each side, got {len(q)} generated and {len(p)} test")
    m, n = len(q), len(p)
    # scipy's statistic is U of the first sample (pairs where it is larger), whatever the alternative
    u = mannwhitneyu(q, p, alternative="two-sided", method="asymptotic").statistic
    return float((u - m * n / 2.0) / np.sqrt(m * n * (m + n + 1) / 12.0))


@dataclass(frozen=True)
class CTCells:
    """C_T and its per-cell ingredients (arrays indexed by cell)."""
    c_t: float
    z_u: np.ndarray           # Z_U of each cell, NaN where the cell has no generated points
    test_share: np.ndarray    # P_n(cell): the cell's share of the test points (the weights)
    generated_count: np.ndarray
    included: np.ndarray      # cells whose generated share exceeds tau (the paper's Pi_tau)


def _check_cells(n_cells: int, tau: float | None, n_train: int, n_test: int) -> None:
    if isinstance(n_cells, bool) or not isinstance(n_cells, (int, np.integer)) or n_cells < 1:
        raise ValueError(f"n_cells must be a positive integer, got {n_cells!r}")
    if n_train < n_cells:
        raise ValueError(f"{n_cells} cells need at least {n_cells} training points, got {n_train}")
    if n_test < n_cells:
        raise ValueError(f"{n_cells} cells need at least {n_cells} test points (one per cell), got {n_test}")
    if tau is not None and not 0.0 <= tau < 1.0:
        raise ValueError(f"tau is a share of the generated samples in [0, 1), got {tau!r}")


def _cells(train: np.ndarray, n_cells: int, seed: int) -> KMeans:
    return KMeans(n_clusters=n_cells, n_init=KMEANS_N_INIT, random_state=seed).fit(train)


def copying_ct_cells(train, test, samples, n_cells: int = DEFAULT_N_CELLS, seed: int = 0,
                     tau: float | None = None) -> CTCells:
    """C_T with its per-cell Z_U, weights and counts. See copying_ct."""
    train, test, samples = _points(train, "train"), _points(test, "test"), _points(samples, "samples")
    _same_dimension(train=train, test=test, samples=samples)
    _check_cells(n_cells, tau, len(train), len(test))
    m = len(samples)
    tau = MIN_GENERATED_PER_CELL / m if tau is None else tau

    kmeans = _cells(train, n_cells, seed)
    train_cell, test_cell, sample_cell = (kmeans.predict(a) for a in (train, test, samples))
    train_count, test_count, generated_count = (np.bincount(c, minlength=n_cells)
                                                for c in (train_cell, test_cell, sample_cell))
    empty = np.flatnonzero((test_count == 0) | (train_count == 0))
    if len(empty):  # no test points: the cell has no reference; no training points: no distances
        raise ValueError(f"cells {empty.tolist()} of {n_cells} hold no test or no training points "
                         f"({len(train)} training, {len(test)} test points): use fewer cells")

    included = generated_count / m > tau
    if not included.any():
        raise ValueError(f"no cell holds more than {tau * m:g} of the {m} generated samples "
                         f"(most in one cell: {generated_count.max()}): generate more samples or use fewer cells")

    z_u = np.full(n_cells, np.nan)
    for cell in np.flatnonzero(generated_count):
        cell_train = train[train_cell == cell]  # distances to the training points of the same cell
        z_u[cell] = mann_whitney_z(_nearest(samples[sample_cell == cell], cell_train)[0],
                                   _nearest(test[test_cell == cell], cell_train)[0])

    test_share = test_count / len(test)
    weights = test_share[included]
    c_t = float(np.dot(weights, z_u[included]) / weights.sum())
    return CTCells(c_t, z_u, test_share, generated_count, included)


def copying_ct(train, test, samples, n_cells: int = DEFAULT_N_CELLS, seed: int = 0,
               tau: float | None = None) -> float:
    """The C_T statistic (Meehan et al. 2020): << 0 data-copying, about 0 fine, >> 0 underfitting.

    train, test, samples: (n, d) points (or (n, ...) images, flattened) in the same space.
    n_cells: k-means cells fitted on the training points (seeded by seed).
    tau: a cell counts when its share of the samples is above tau; None = 20 / len(samples), the
    authors' choice (a cell needs more than 20 generated samples)."""
    return copying_ct_cells(train, test, samples, n_cells, seed, tau).c_t
