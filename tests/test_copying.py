"""Data-copying (nearest-training ratio, C_T) and latent usage (active units), on constructed cases.

The C_T cases use a mixture of five well-separated Gaussians in 20 dimensions (2000 training, 1000
test, 1000 generated points, the sizes of the authors' moons experiment): copies of training points,
fresh draws from the same mixture (the null hypothesis), and draws spread wider than the data
(underfitting). Under the null each cell's Z_U is about N(0, 1) and C_T, their test-share-weighted
mean over 5 cells of about equal weight, about N(0, 1/5): the bound |C_T| < 2 is more than 4 sd.
"""
from __future__ import annotations

import numpy as np
import pytest

from aebench.metrics.copying import (
    copying_ct,
    copying_ct_cells,
    mann_whitney_z,
    nearest_training_indices,
    nn_train_ratio,
)
from aebench.metrics.latent_usage import active_units, unit_activity

DIM, COMPONENTS = 20, 5
CENTRES = np.random.default_rng(123).normal(scale=6.0, size=(COMPONENTS, DIM))  # far apart: one cell each


def mixture(n: int, seed: int, scale: float = 1.0, components=range(COMPONENTS)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return CENTRES[rng.choice(list(components), n)] + scale * rng.normal(size=(n, DIM))


@pytest.fixture(scope="module")
def train():
    return mixture(2000, 1)


@pytest.fixture(scope="module")
def test():
    return mixture(1000, 2)


@pytest.fixture(scope="module")
def copies(train):
    """1000 distinct training points, each nudged by a tiny perturbation."""
    rng = np.random.default_rng(3)
    return train[rng.choice(len(train), 1000, replace=False)] + 1e-3 * rng.normal(size=(1000, DIM))


@pytest.fixture(scope="module")
def fresh():
    return mixture(1000, 4)


# ---------------------------------------------------------------- nearest training point


def test_nearest_training_indices_finds_the_copied_points(train):
    picked = np.array([5, 17, 3, 1999])
    # An offset of 1e-3, not 1e-6: exact brute-force distances come from |a|^2 - 2ab + |b|^2, whose
    # cancellation leaves an error of about sqrt(eps * |a|^2) ~ 1e-7 here, how much of it depending on
    # the CPU's BLAS kernels (1e-6 missed rtol 1e-3 by 0.4% on an AMD EPYC).
    indices, distances = nearest_training_indices(train[picked] + 1e-3, train)
    assert indices.tolist() == picked.tolist()
    assert np.allclose(distances, 1e-3 * np.sqrt(DIM), rtol=1e-3)


def test_nn_train_ratio_is_far_below_1_for_copies(copies, train, test):
    assert nn_train_ratio(copies, train, test) < 0.2


def test_nn_train_ratio_is_about_1_for_fresh_draws(fresh, train, test):
    assert 0.8 < nn_train_ratio(fresh, train, test) < 1.25


def test_nn_train_ratio_is_above_1_for_draws_far_from_the_data(train, test):
    assert nn_train_ratio(mixture(1000, 5, scale=1.5), train, test) > 1.25


def test_nn_train_ratio_flattens_images(train, test):
    as_images = train[:500].reshape(500, 4, 5)
    assert nn_train_ratio(as_images, train, test) == nn_train_ratio(train[:500], train, test)


# ---------------------------------------------------------------- Z_U


def test_z_u_follows_the_papers_formula_on_a_hand_computed_case():
    # m=2 generated, n=3 test: mean mn/2 = 3, sd = sqrt(2*3*6/12) = sqrt(3)
    assert mann_whitney_z([1, 2], [3, 4, 5]) == pytest.approx(-np.sqrt(3))  # U = 0: all generated nearer
    assert mann_whitney_z([6, 7], [3, 4, 5]) == pytest.approx(np.sqrt(3))   # U = 6: all farther
    assert mann_whitney_z([4, 4.5], [3, 4, 5]) == pytest.approx(0.5 / np.sqrt(3))  # U = 1.5 + 2 (a tie is 1/2)


# ---------------------------------------------------------------- C_T


def test_ct_is_strongly_negative_for_copies(copies, train, test):
    assert copying_ct(train, test, copies) < -3


def test_ct_is_near_0_for_fresh_draws(fresh, train, test):
    result = copying_ct_cells(train, test, fresh)
    assert abs(result.c_t) < 2
    assert result.included.all() and np.all(np.abs(result.z_u) < 4)


def test_ct_is_strongly_positive_for_draws_far_from_the_data(train, test):
    assert copying_ct(train, test, mixture(1000, 5, scale=1.5)) > 3


def test_ct_finds_copying_confined_to_one_cell(copies, train, test):
    # fresh draws from four components, copies of training points from the fifth
    last = np.flatnonzero(np.linalg.norm(train - CENTRES[-1], axis=1) < 15)
    samples = np.concatenate([mixture(800, 6, components=range(COMPONENTS - 1)), train[last[:200]] + 1e-3])
    result = copying_ct_cells(train, test, samples)
    copied = result.z_u < -5
    assert copied.sum() == 1 and np.all(np.abs(result.z_u[~copied]) < 4)
    assert -5 < result.c_t < -1  # one cell in five copies: diluted, still visible


def test_ct_leaves_out_cells_with_too_few_samples_and_weights_by_test_share(train, test):
    samples = np.concatenate([mixture(1000, 7, components=range(COMPONENTS - 1)),
                              mixture(10, 8, components=[COMPONENTS - 1])])
    result = copying_ct_cells(train, test, samples)  # default tau: more than 20 samples per cell
    assert sorted(result.generated_count)[0] == 10 and result.included.sum() == COMPONENTS - 1
    w = result.test_share[result.included]
    assert result.c_t == pytest.approx(np.dot(w, result.z_u[result.included]) / w.sum())
    assert copying_ct_cells(train, test, samples, tau=0.0).included.all()


def test_ct_is_deterministic(fresh, train, test):
    assert copying_ct(train, test, fresh, seed=0) == copying_ct(train, test, fresh, seed=0)


# ---------------------------------------------------------------- input validation


def test_ct_rejects_impossible_inputs(fresh, train, test):
    with pytest.raises(ValueError, match="shape"):
        copying_ct(train[:, 0], test, fresh)
    with pytest.raises(ValueError, match="same dimension"):
        copying_ct(train, test[:, :10], fresh)
    with pytest.raises(ValueError, match="NaN"):
        copying_ct(train, test, np.where(fresh > 3, np.nan, fresh))
    with pytest.raises(ValueError, match="n_cells"):
        copying_ct(train, test, fresh, n_cells=0)
    with pytest.raises(ValueError, match="at least 5 training points"):
        copying_ct(train[:3], test, fresh)
    with pytest.raises(ValueError, match="tau"):
        copying_ct(train, test, fresh, tau=1.5)


def test_ct_rejects_a_cell_without_test_points(train, test, fresh):
    outliers = CENTRES[0] + 100 + np.random.default_rng(9).normal(size=(30, DIM))
    with pytest.raises(ValueError, match="no test or no training points"):
        copying_ct(np.concatenate([train, outliers]), test, fresh, n_cells=COMPONENTS + 1)


def test_ct_rejects_too_few_generated_samples(train, test):
    with pytest.raises(ValueError, match="more than 20 of the 15 generated"):
        copying_ct(train, test, mixture(15, 10))


def test_nn_train_ratio_rejects_test_points_taken_from_the_training_set(train, fresh):
    with pytest.raises(ValueError, match="test points also occur in the training set"):
        nn_train_ratio(fresh, train, train[:100])


# ---------------------------------------------------------------- active units


def test_active_units_counts_the_varying_dimensions():
    rng = np.random.default_rng(0)
    varying = rng.normal(size=(500, 3))
    assert active_units(np.hstack([varying, np.full((500, 5), 0.7)])) == 3
    assert active_units(np.hstack([varying, 1e-2 * rng.normal(size=(500, 5))])) == 3  # variance 1e-4


def test_active_units_respects_the_threshold():
    signs = np.tile([1.0, -1.0], 50)[:, None]
    codes = signs * np.array([0.5, 0.125, 0.0625])  # variances 0.25, 0.015625, 0.00390625 exactly
    assert unit_activity(codes) == pytest.approx([0.25, 0.015625, 0.00390625])
    assert active_units(codes) == 2  # default threshold 0.01
    assert active_units(codes, threshold=0.001) == 3
    assert active_units(codes, threshold=0.015625) == 1  # strictly above
    assert active_units(codes, threshold=0.3) == 0


def test_active_units_rejects_impossible_inputs():
    with pytest.raises(ValueError, match="at least 2 images"):
        active_units(np.zeros((1, 4)))
    with pytest.raises(ValueError, match="shape"):
        active_units(np.zeros(4))
    with pytest.raises(ValueError, match="NaN"):
        active_units(np.array([[0.0, np.nan], [1.0, 2.0]]))
    with pytest.raises(ValueError, match="threshold"):
        active_units(np.zeros((3, 4)), threshold=-1)
