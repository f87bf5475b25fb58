"""KID, precision/recall and density/coverage on known answers: identical sets, disjoint clouds, a
dropped mode, KID's formula, the neighbourhood sizes, determinism, and the small-set guards."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from aebench.metrics.fidelity import KEYS, fidelity_scores

D = 16


def cloud(n: int, seed: int, shift: float = 0.0, d: int = D) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, d)) + shift


def unbiased_cubic_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """Binkowski et al.'s estimator written out: off-diagonal means within each set, full mean across."""
    def kernel(a, b):
        return (a @ b.T / x.shape[1] + 1) ** 3

    m = len(x)
    kxx, kyy, kxy = kernel(x, x), kernel(y, y), kernel(x, y)
    within = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))
    return float(within - 2 * kxy.mean())


def test_identical_sets_score_perfectly():
    x = cloud(150, seed=0)
    s = fidelity_scores(x, x, kid_subsets=5)
    assert list(s) == list(KEYS)
    assert min(s["precision"], s["recall"], s["coverage"]) >= 0.99
    assert s["density"] == pytest.approx(1.0, abs=0.01)
    # Not exactly 0: the estimator's cross term pairs each point with itself, -(2/m) mean k(x, x) at most
    # (about -2 * 8 / 150 here; the next test checks the exact value). Disjoint sets give > 1e3.
    assert -0.15 < s["kid"] <= 0


def test_identical_sets_kid_is_the_estimator_on_one_set():
    """Subsets as large as the sets are permutations of them, so every subset gives the full-set value."""
    x, y = cloud(80, seed=1), cloud(80, seed=2, shift=0.5)
    s = fidelity_scores(x, y, kid_subsets=4)
    assert s["kid"] == pytest.approx(unbiased_cubic_mmd2(x, y), rel=1e-9)
    assert s["kid_std"] < 1e-9 * abs(s["kid"])
    # For one set against itself that value is (2/m) (mean off-diagonal k - mean diagonal k) < 0.
    m = len(x)
    k = (x @ x.T / D + 1) ** 3
    assert fidelity_scores(x, x, kid_subsets=2)["kid"] == pytest.approx(
        2 * (k.sum() - np.trace(k)) / (m * m * (m - 1)) - 2 * np.trace(k) / (m * m), rel=1e-9)


def test_independent_samples_of_one_distribution_have_kid_near_zero():
    s = fidelity_scores(cloud(300, seed=3), cloud(300, seed=4), kid_subsets=10)
    assert abs(s["kid"]) < 0.01
    assert s["precision"] > 0.5 and s["recall"] > 0.5 and s["coverage"] > 0.8  # same support


def test_disjoint_sets_score_zero():
    a, b = cloud(120, seed=5, d=32), cloud(120, seed=6, d=32, shift=20.0)  # 20 std apart on every axis
    s = fidelity_scores(a, b, kid_subsets=5)
    assert s["precision"] == s["recall"] == s["density"] == s["coverage"] == 0.0
    assert s["kid"] > 1e3


def test_dropped_mode_keeps_precision_and_halves_recall():
    mode_a, mode_b = cloud(100, seed=7), cloud(100, seed=8, shift=20.0)
    reference = np.concatenate([mode_a, mode_b])
    s = fidelity_scores(mode_a, reference, kid_subsets=5)  # generated: one of the two modes, exactly
    assert s["precision"] >= 0.99 and s["density"] >= 0.9  # every sample is realistic...
    assert 0.4 <= s["recall"] <= 0.6 and 0.4 <= s["coverage"] <= 0.6  # ...but half the reference is missed
    assert s["kid"] > 1.0
    # Swapped roles (generated covers both modes, reference only one) swap precision and recall.
    swapped = fidelity_scores(reference, mode_a, kid_subsets=5)
    assert swapped["recall"] >= 0.99 and 0.4 <= swapped["precision"] <= 0.6


def test_neighbourhood_sizes_are_3_and_5():
    from prdc import compute_prdc

    gen, ref = cloud(60, seed=9, d=8), cloud(60, seed=10, d=8, shift=0.3)
    s = fidelity_scores(gen, ref, kid_subsets=2)
    k3, k5 = (compute_prdc(real_features=ref, fake_features=gen, nearest_k=k) for k in (3, 5))
    assert k3["recall"] != k5["recall"] and k3["density"] != k5["density"]  # so the checks below can fail
    assert (s["precision"], s["recall"]) == (k3["precision"], k3["recall"])
    assert (s["density"], s["coverage"]) == (k5["density"], k5["coverage"])


def test_kid_is_deterministic_in_the_seed_and_tensors_are_accepted():
    gen, ref = cloud(90, seed=11), cloud(120, seed=12, shift=0.2)
    first = fidelity_scores(gen, ref, seed=3, kid_subsets=8, kid_subset_size=40)
    assert fidelity_scores(gen, ref, seed=3, kid_subsets=8, kid_subset_size=40) == first
    assert fidelity_scores(torch.from_numpy(gen).float(), ref, seed=3, kid_subsets=8,
                           kid_subset_size=40)["kid"] == pytest.approx(first["kid"], rel=1e-5)
    other = fidelity_scores(gen, ref, seed=4, kid_subsets=8, kid_subset_size=40)
    assert other["kid"] != first["kid"] and other["precision"] == first["precision"]


def test_default_subset_size_is_the_smaller_set():
    gen, ref = cloud(30, seed=13), cloud(200, seed=14)
    assert fidelity_scores(gen, ref, kid_subsets=3) == fidelity_scores(gen, ref, kid_subsets=3, kid_subset_size=30)


@pytest.mark.parametrize("n_gen, n_ref, subset, match", [
    (50, 40, 41, "KID subset size"),  # larger than the smaller set
    (50, 40, 1, "KID subset size"),  # the unbiased estimator needs two points
    (6, 40, None, "at least 7"),  # k = 5 neighbours besides the point itself, plus prdc's partition index
    (40, 6, None, "at least 7"),
])
def test_small_sets_are_refused(n_gen, n_ref, subset, match):
    with pytest.raises(ValueError, match=match):
        fidelity_scores(cloud(n_gen, seed=15), cloud(n_ref, seed=16), kid_subset_size=subset)


def test_smallest_allowed_sets_and_shape_errors():
    s = fidelity_scores(cloud(7, seed=17), cloud(7, seed=18), kid_subsets=2)
    assert all(np.isfinite(v) for v in s.values())
    with pytest.raises(ValueError, match="dimension"):
        fidelity_scores(cloud(20, seed=0, d=4), cloud(20, seed=0, d=5))
    with pytest.raises(ValueError, match=r"\(n, d\)"):
        fidelity_scores(np.zeros(20), cloud(20, seed=0))


def test_non_finite_features_give_nan_like_fid():
    gen = cloud(20, seed=19)
    gen[3, 2] = np.nan
    assert all(np.isnan(v) for v in fidelity_scores(gen, cloud(20, seed=20)).values())


def test_kid_equals_torch_fidelitys_on_the_same_features_and_seed():
    from torch_fidelity.metric_kid import KEY_METRIC_KID_MEAN, KEY_METRIC_KID_STD, kid_features_to_metric

    rng = np.random.default_rng(7)
    gen, ref = rng.normal(size=(150, 20)), rng.normal(0.3, 1.2, size=(120, 20))
    ours = fidelity_scores(gen, ref, seed=5, kid_subsets=6, kid_subset_size=50)
    library = kid_features_to_metric(torch.from_numpy(gen), torch.from_numpy(ref), kid_subsets=6, kid_subset_size=50,
                                     rng_seed=5, verbose=False)
    assert ours["kid"] == pytest.approx(library[KEY_METRIC_KID_MEAN], rel=1e-10)
    assert ours["kid_std"] == pytest.approx(library[KEY_METRIC_KID_STD], rel=1e-8)
    assert ours["kid"] > 0.05  # the two clouds differ: not a trivial agreement at 0
