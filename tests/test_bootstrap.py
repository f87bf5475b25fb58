"""The hierarchical bootstrap (aebench/report/bootstrap.py) on synthetic per-image values whose true mean is known."""
from __future__ import annotations

import numpy as np
import pytest

from aebench.report.bootstrap import hierarchical_means, mean_interval, paired_difference_interval

TRUE_MEAN = 3.0


def seeds_of_images(rng, seeds: int, n: int, seed_sd: float = 0.0, image_sd: float = 1.0) -> list[np.ndarray]:
    """Per seed n image values: the true mean, a per-seed shift (training noise) and image noise."""
    return [TRUE_MEAN + rng.normal(0, seed_sd) + rng.normal(0, image_sd, n) for _ in range(seeds)]


def test_the_interval_covers_the_true_mean_at_least_as_often_as_it_says():
    rng = np.random.default_rng(1)
    covered = []
    for replication in range(200):
        low, high = mean_interval(seeds_of_images(rng, 5, 200), resamples=400, seed=replication)
        covered.append(low <= TRUE_MEAN <= high)
    assert np.mean(covered) >= 0.93  # 95% nominal, conservative (next test); 200 replications: about ±2%


def test_without_a_seed_effect_the_two_stages_count_image_noise_twice():
    """Known property of the two-stage bootstrap: with no seed effect the seed stage sees image noise
    once more, so the interval is sqrt(2 - 1/S) times the image-only width (1.34 for S = 5): cautious."""
    rng = np.random.default_rng(6)
    seeds, n = 5, 2000
    low, high = mean_interval(seeds_of_images(rng, seeds, n))
    image_only = 2 * 1.96 / np.sqrt(seeds * n)  # image sd 1
    assert (high - low) / image_only == pytest.approx(np.sqrt(2 - 1 / seeds), rel=0.12)


def test_the_interval_narrows_as_images_grow_like_one_over_root_n():
    rng = np.random.default_rng(2)
    widths = {}
    for n in (250, 4000):  # one seed: the image stage alone (several seeds add their own sampling noise)
        low, high = mean_interval(seeds_of_images(rng, 1, n), resamples=1000)
        assert low <= TRUE_MEAN <= high
        widths[n] = high - low
    assert widths[250] / widths[4000] == pytest.approx(4.0, rel=0.15)  # sqrt(4000 / 250)


def test_seeds_are_resampled_too():
    """Seeds whose images do not vary: all the width comes from the seed level, inside the seeds' range."""
    per_seed = [np.full(100, value) for value in (1.0, 2.0, 3.0, 4.0, 5.0)]
    low, high = mean_interval(per_seed)
    assert 1.0 < low < 3.0 < high < 5.0
    assert mean_interval([np.full(100, 3.0)]) == (3.0, 3.0)  # one seed, no image variance: no width


def test_few_distinct_values_take_the_exact_multinomial_shortcut_with_the_binomial_width():
    """0/1 correctness of 1000 images at 90%: the standard error is sqrt(0.9 * 0.1 / 1000) = 0.0095."""
    correct = np.zeros(1000)
    correct[:900] = 1.0
    low, high = mean_interval([correct])
    assert low < 0.9 < high
    assert (high - low) == pytest.approx(2 * 1.96 * np.sqrt(0.9 * 0.1 / 1000), rel=0.1)


def test_a_constant_shift_is_its_own_interval():
    rng = np.random.default_rng(3)
    theirs = seeds_of_images(rng, 4, 500, seed_sd=0.5)
    ours = [values - 0.7 for values in theirs]
    low, high = paired_difference_interval(ours, theirs)
    assert low == pytest.approx(-0.7) and high == pytest.approx(-0.7)


def test_pairing_by_image_removes_what_both_runs_share():
    """Two runs scored on the same hard and easy images: the paired interval of the difference is far
    narrower than the two separate intervals, and holds the true difference (0.1)."""
    rng = np.random.default_rng(4)
    difficulty = [rng.normal(0, 2.0, 1000) for _ in range(3)]  # shared by both members, per seed
    theirs = [TRUE_MEAN + d + rng.normal(0, 0.1, 1000) for d in difficulty]
    ours = [TRUE_MEAN + 0.1 + d + rng.normal(0, 0.1, 1000) for d in difficulty]
    low, high = paired_difference_interval(ours, theirs)
    assert low < 0.1 < high and low > 0
    alone = mean_interval(ours)
    assert (high - low) * 5 < alone[1] - alone[0]


def test_the_same_input_gives_the_same_interval_and_a_mismatch_is_refused():
    rng = np.random.default_rng(5)
    per_seed = seeds_of_images(rng, 3, 300)
    assert mean_interval(per_seed) == mean_interval(per_seed)
    assert len(hierarchical_means(per_seed, resamples=123)) == 123
    with pytest.raises(ValueError, match="same number of images"):
        paired_difference_interval(per_seed, [values[:-1] for values in per_seed])
    with pytest.raises(ValueError, match="at least one seed"):
        mean_interval([])
