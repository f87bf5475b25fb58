"""A 95% interval of a mean over seeds that also resamples the test images each seed was scored on.

The value reported for a per-image metric (recon_sse, denoise_sse_s*, knn{k}_acc) is the mean over seeds
of each run's mean over the test images. Its spread has two sources: the seeds (training randomness) and
the test images (a finite sample of the data). The seed std sees only the first. The hierarchical
bootstrap here sees both: a resample draws S seeds with replacement from the S seeds, then, for every
seed drawn, n images with replacement from that seed's n images (a seed drawn twice gets two independent
image resamples), and takes the mean over the drawn seeds of the resampled image means. The interval is
the 2.5% and 97.5% percentiles over RESAMPLES resamples.

What it promises: with few seeds and a large seed effect, the seed stage is as short of coverage as
any percentile bootstrap over 3 to 5 values; with no seed effect it counts image noise twice (the seed
means already vary by it), so the interval is up to sqrt(2 - 1/S) times too wide: cautious, never
optimistic about the images (tests/test_bootstrap.py measures both).

A difference between two models (or objectives) is bootstrapped the same way on the per-image
differences of the seeds both ran: the same image indices for both members of a pair within a seed, so
that what the two runs share (the same test images, in the same order) cancels, as in a paired test.

Fixed generator seed SEED: the same input always gives the same interval. RESAMPLES = 2000 (Monte-Carlo
error of a 95% percentile about 0.1 to 0.2 of the interval's standard error). Vectorised: an image
resample is a matrix of indices drawn in chunks; where a seed's values take few distinct values (0/1
correctness of kNN, or its paired differences -1/0/1), a resample's mean is drawn exactly from the
multinomial counts of those values instead, at no cost in n.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

RESAMPLES = 2000
LEVEL = 0.95
SEED = 20261205  # the generator's seed: fixed, so that every report gives the same interval
_FEW_VALUES = 64  # at most this many distinct values: draw the counts of each value (multinomial)
_CHUNK = 2_000_000  # indices drawn at once (8 MB as int32)


def _resampled_means(values: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """`count` means of bootstrap resamples (n draws with replacement) of `values` (length n)."""
    n = len(values)
    distinct, frequency = np.unique(values, return_counts=True)
    if len(distinct) <= _FEW_VALUES:  # same distribution as drawing indices, without drawing n of them
        return rng.multinomial(n, frequency / n, size=count) @ distinct / n
    means = np.empty(count)
    rows = max(1, _CHUNK // n)
    for start in range(0, count, rows):
        stop = min(count, start + rows)
        means[start:stop] = values[rng.integers(0, n, size=(stop - start, n), dtype=np.int32)].mean(axis=1)
    return means


def hierarchical_means(per_seed: Sequence[np.ndarray], resamples: int = RESAMPLES,
                       seed: int = SEED) -> np.ndarray:
    """The bootstrap distribution of the mean over seeds of each seed's mean over images: seeds drawn
    with replacement, then images with replacement within every seed drawn (module docstring)."""
    arrays = [np.asarray(a, dtype=float) for a in per_seed]
    if not arrays or any(a.ndim != 1 or len(a) == 0 for a in arrays):
        raise ValueError("hierarchical_means needs at least one seed, each a non-empty 1-D array")
    rng = np.random.default_rng(seed)
    drawn = rng.integers(0, len(arrays), size=(resamples, len(arrays)))  # the seeds of each resample
    totals = np.zeros(resamples)
    for index, values in enumerate(arrays):
        resample_of_draw = np.nonzero(drawn == index)[0]  # one entry per time this seed was drawn
        np.add.at(totals, resample_of_draw, _resampled_means(values, len(resample_of_draw), rng))
    return totals / len(arrays)


def percentile_interval(distribution: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    low, high = np.quantile(distribution, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


def mean_interval(per_seed: Sequence[np.ndarray], resamples: int = RESAMPLES, seed: int = SEED,
                  level: float = LEVEL) -> tuple[float, float]:
    """Percentile interval of the mean over seeds, resampling seeds and images (module docstring)."""
    return percentile_interval(hierarchical_means(per_seed, resamples, seed), level)


def paired_difference_interval(ours: Sequence[np.ndarray], theirs: Sequence[np.ndarray],
                               resamples: int = RESAMPLES, seed: int = SEED,
                               level: float = LEVEL) -> tuple[float, float]:
    """Interval of mean(ours) - mean(theirs): `ours[i]` and `theirs[i]` are one seed's per-image values
    of the two members, image by image; drawing the same image indices for both is bootstrapping their
    per-image differences."""
    if len(ours) != len(theirs) or any(len(a) != len(b) for a, b in zip(ours, theirs)):
        raise ValueError("a paired interval needs the same seeds and, per seed, the same number of images")
    differences = [np.asarray(a, dtype=float) - np.asarray(b, dtype=float) for a, b in zip(ours, theirs)]
    return mean_interval(differences, resamples, seed, level)
