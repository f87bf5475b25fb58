"""The statistics layer on data whose answer is known in advance."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from aebench.report.cd_diagram import cd_diagram
from aebench.report.stats import (
    NOTE_CONSTANT,
    NOTE_IDENTICAL,
    NOTE_TOO_FEW,
    PAIR_COLUMNS,
    best_marks,
    cd_groups,
    critical_difference,
    friedman_nemenyi,
    holm,
    pairwise_comparisons,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Any warning (scipy's zero-variance or precision-loss RuntimeWarning, pandas') fails a test here.
pytestmark = pytest.mark.filterwarnings("error")

NOISE = np.array([0.0, 0.004, -0.005, 0.002, -0.003])  # about +-0.005 around a mean, 5 seeds


def frame(per_model: dict[str, list[float]], seeds: dict[str, list[int]] | None = None) -> pd.DataFrame:
    """Long values (model, seed, value); seeds 0, 1, ... unless given per model."""
    rows = [{"model": m, "seed": (seeds or {}).get(m, list(range(len(v))))[i], "value": x}
            for m, v in per_model.items() for i, x in enumerate(v)]
    return pd.DataFrame(rows)


def pair(table: pd.DataFrame, a: str, b: str) -> pd.Series:
    return table[(table["model_a"] == a) & (table["model_b"] == b)].iloc[0]


# ---------------------------------------------------------------- pairs within one (dataset, metric)


def test_identical_models_differ_in_nothing_and_tie():
    same = list(0.9 + NOISE)
    values = frame({"a": same, "b": same})
    row = pair(pairwise_comparisons(values, higher_is_better=True), "a", "b")
    assert row["n_pairs"] == 5 and row["mean_diff"] == 0.0
    assert row["p_value"] == 1.0 and not row["significant"] and row["better"] == ""
    assert row["note"] == NOTE_IDENTICAL
    assert best_marks(values, True) == {"a": "tie", "b": "tie"}


def test_wide_margin_on_every_seed_is_significant_and_best():
    values = frame({"low": list(0.80 + NOISE[::-1]), "high": list(0.95 + NOISE)})
    table = pairwise_comparisons(values, higher_is_better=True)
    assert list(table.columns) == PAIR_COLUMNS and len(table) == 1
    row = pair(table, "low", "high")
    assert row["mean_diff"] == pytest.approx(-0.15)
    assert row["p_value"] < 1e-4 and row["significant"] and row["better"] == "high"
    assert best_marks(values, True) == {"low": "", "high": "best"}


def test_lower_is_better_flips_the_winner_and_unknown_direction_marks_nothing():
    values = frame({"low": list(0.80 + NOISE[::-1]), "high": list(0.95 + NOISE)})
    assert pair(pairwise_comparisons(values, False), "low", "high")["better"] == "low"
    assert best_marks(values, False) == {"low": "best", "high": ""}
    row = pair(pairwise_comparisons(values, None), "low", "high")
    assert row["significant"] and row["better"] == ""
    assert best_marks(values, None) == {"low": "", "high": ""}


def test_the_test_is_paired_by_seed():
    # Seeds move both models together (0.5 .. 0.9) and b is 0.01 above a on each: an unpaired test
    # sees only the seed spread, the paired one sees a steady gain.
    base = np.array([0.5, 0.9, 0.6, 0.8, 0.7])
    a, b = base, base + 0.01 + np.array([0.001, -0.001, 0.0005, 0.0, -0.0005])
    values = frame({"a": list(a), "b": list(b)})
    row = pair(pairwise_comparisons(values, True), "a", "b")
    assert scipy_stats.ttest_ind(a, b).pvalue > 0.5  # what an unpaired test would say
    assert row["p_value"] == pytest.approx(scipy_stats.ttest_rel(a, b).pvalue)
    assert row["p_value"] < 1e-4 and row["better"] == "b"


def test_only_shared_seeds_count():
    # a's seeds 3 and 4 (huge values) have no partner in b: using them would flip the mean difference.
    values = frame({"a": [0.80, 0.81, 0.79, 50.0, 60.0], "b": [0.90, 0.92, 0.91]},
                   seeds={"a": [0, 1, 2, 3, 4], "b": [0, 1, 2]})
    row = pair(pairwise_comparisons(values, True), "a", "b")
    assert row["n_pairs"] == 3
    assert row["mean_diff"] == pytest.approx(-0.11)
    assert row["better"] == "b"


def test_fewer_than_two_shared_seeds_is_not_tested_and_left_out_of_holm():
    values = frame({"a": list(0.9 + NOISE[:3]), "b": list(0.5 + NOISE[2::-1]), "c": list(0.1 + NOISE[:3])},
                   seeds={"a": [0, 1, 2], "b": [0, 1, 2], "c": [2, 3, 4]})
    table = pairwise_comparisons(values, True)
    for other in ("a", "b"):
        row = pair(table, other, "c")
        assert row["n_pairs"] == 1 and row["note"] == NOTE_TOO_FEW
        assert math.isnan(row["p_value"]) and math.isnan(row["p_holm"]) and not row["significant"]
    tested = pair(table, "a", "b")
    assert tested["p_holm"] == pytest.approx(tested["p_value"])  # a family of one: nothing to correct
    # c cannot be told apart from the leader, so a is not "best" although it beats b.
    assert best_marks(values, True) == {"a": "tie", "b": "", "c": "tie"}


def test_a_constant_difference_has_no_variance_and_is_not_significant():
    values = frame({"a": [0.5, 0.6, 0.7], "b": [0.6, 0.7, 0.8]})  # b - a = 0.1 (to rounding) on every seed
    row = pair(pairwise_comparisons(values, True), "a", "b")
    assert row["note"] == NOTE_CONSTANT and math.isnan(row["p_value"]) and not row["significant"]
    assert best_marks(values, True) == {"a": "tie", "b": "tie"}


def test_holm_makes_a_borderline_pair_non_significant_among_many():
    a = 0.70 + NOISE
    b = a + 0.004 + np.array([0.003, -0.002, 0.004, -0.003, 0.0])  # a small, noisy gain: borderline
    alone = pair(pairwise_comparisons(frame({"a": list(a), "b": list(b)}), True), "a", "b")
    assert 0.01 < alone["p_value"] < 0.05 and alone["significant"]  # significant on its own
    # Four wildly noisy models (mean 0.7, spread +-0.3) add 14 pairs far from significant: a-b keeps the smallest p.
    noisy = {f"n{i}": list(0.7 + np.roll([0.3, -0.3, 0.2, -0.2, 0.0], i)) for i in range(4)}
    table = pairwise_comparisons(frame({"a": list(a), "b": list(b), **noisy}), True)
    assert len(table) == 15
    row = pair(table, "a", "b")
    assert row["p_value"] == pytest.approx(alone["p_value"])
    assert row["p_value"] == table["p_value"].min()
    assert row["p_holm"] == pytest.approx(min(1.0, 15 * row["p_value"]))
    assert not row["significant"] and row["better"] == ""


def test_holm_matches_the_hand_computed_step_down():
    # sorted 0.005, 0.01, 0.03, 0.04 scaled by 4, 3, 2, 1 -> 0.02, 0.03, 0.06, 0.04 -> running max 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.6, 0.9, 0.02]) == pytest.approx([1.0, 1.0, 0.06])  # capped at 1
    assert holm([0.2]) == pytest.approx([0.2]) and len(holm([])) == 0


def test_best_marks_ties_the_leader_with_every_model_not_significantly_worse():
    values = frame({"a": list(0.90 + NOISE), "b": list(0.899 + NOISE[::-1]), "c": list(0.50 + np.roll(NOISE, 1))})
    assert best_marks(values, True) == {"a": "tie", "b": "tie", "c": ""}


def test_best_marks_of_a_model_alone_or_without_values():
    assert best_marks(frame({"a": [0.1, 0.2]}), True) == {"a": ""}
    values = frame({"a": [0.9, 0.91, 0.92], "b": [math.nan] * 3, "c": [0.5, 0.51, 0.49]})
    assert best_marks(values, True) == {"a": "best", "b": "", "c": ""}
    assert pair(pairwise_comparisons(values, True), "a", "b")["n_pairs"] == 0


def test_two_values_for_one_seed_are_refused():
    values = frame({"a": [0.1, 0.2]}, seeds={"a": [0, 0]})
    with pytest.raises(ValueError, match="seed"):
        pairwise_comparisons(values, True)


# ---------------------------------------------------------------- across blocks: Friedman and Nemenyi


def test_a_model_always_first_has_mean_rank_one_and_a_small_friedman_p():
    rng = np.random.default_rng(1)
    blocks = [np.concatenate([[1], 1 + rng.permutation(3) + 1]) for _ in range(20)]
    result = friedman_nemenyi(pd.DataFrame(blocks, columns=["swae", "vae", "wae", "beta"]))
    assert result.n_blocks == 20 and result.p_value < 1e-4
    assert result.mean_ranks.index[0] == "swae" and result.mean_ranks["swae"] == 1.0
    assert result.mean_ranks.is_monotonic_increasing


@pytest.mark.parametrize("kind", ["every block tied", "balanced rotation"])
def test_no_preferred_model_gives_a_large_friedman_p(kind):
    if kind == "every block tied":
        ranks = pd.DataFrame(np.full((6, 4), 2.5), columns=list("abcd"))
    else:  # each model holds each rank equally often
        ranks = pd.DataFrame([np.roll([1, 2, 3, 4], shift) for shift in range(4)] * 3, columns=list("abcd"))
    result = friedman_nemenyi(ranks)
    assert result.statistic == pytest.approx(0.0, abs=1e-12) and result.p_value == pytest.approx(1.0)
    assert (result.mean_ranks == 2.5).all()


@pytest.mark.parametrize("k, alpha, q", [(5, 0.05, 2.728), (2, 0.05, 1.960), (10, 0.05, 3.164), (5, 0.10, 2.459)])
def test_critical_difference_matches_demsar_table(k, alpha, q):
    n_blocks = 12
    expected = q * math.sqrt(k * (k + 1) / (6 * n_blocks))
    assert critical_difference(k, n_blocks, alpha) == pytest.approx(expected, rel=5e-4)


def test_friedman_uses_complete_blocks_and_ranks_within_them():
    scores = pd.DataFrame({"a": [0.1, 0.2, np.nan, 0.3], "b": [0.5, 0.6, 0.1, 0.9], "c": [0.9, 0.7, 0.2, 0.4],
                           "d": [0.3, 0.8, 0.5, 0.1]})  # lower = better; row 2 lacks a
    result = friedman_nemenyi(scores)
    assert result.n_blocks == 3
    assert result.mean_ranks.to_dict() == pytest.approx({"a": 4 / 3, "b": 3.0, "c": 10 / 3, "d": 7 / 3})
    assert result.critical_difference == pytest.approx(critical_difference(4, 3))


def test_friedman_with_two_models_has_no_p_but_a_critical_difference():
    result = friedman_nemenyi(pd.DataFrame({"a": [1, 1, 2], "b": [2, 2, 1]}))
    assert math.isnan(result.p_value) and result.critical_difference == pytest.approx(1.960 * math.sqrt(1 / 3), rel=1e-3)


def test_cd_groups_join_models_closer_than_cd():
    ranks = pd.Series({"d": 3.2, "a": 1.0, "c": 3.0, "b": 1.5})
    assert cd_groups(ranks, 1.0) == [["a", "b"], ["c", "d"]]
    assert cd_groups(ranks, 0.4) == [["c", "d"]]
    assert cd_groups(ranks, 2.5) == [["a", "b", "c", "d"]]
    assert cd_groups(ranks, 2.0) == [["a", "b"], ["b", "c", "d"]]  # c - a = 2.0 is not less than CD
    assert cd_groups(ranks, 2.01) == [["a", "b", "c"], ["b", "c", "d"]]


def test_cd_diagram_writes_a_png(tmp_path):
    rng = np.random.default_rng(2)
    ranks = pd.DataFrame([rng.permutation(5) + 1 for _ in range(10)], columns=["swae", "vae", "beta-vae", "wae", "vamp"])
    path = cd_diagram(friedman_nemenyi(ranks), tmp_path / "cd.png")
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE) and len(data) > 2000
