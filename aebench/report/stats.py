"""Which differences between models are larger than seed noise.

Within one (dataset, metric): every pair of models is compared with a PAIRED t-test
(scipy.stats.ttest_rel) on the seeds both models ran, and the p-values of all pairs of that
(dataset, metric) are corrected together with Holm's step-down method.

Why the paired t-test. Studies here have 3-5 seeds. The exact two-sided Wilcoxon signed-rank test
(and the sign test) cannot reach p < 0.05 with fewer than 6 pairs: its smallest p is 2 / 2**n, i.e.
0.25, 0.125 and 0.0625 for n = 3, 4, 5, so it could never call any difference significant. The
paired t-test has power at n = 3..5; its cost is assuming that the per-seed differences are roughly
normal, which is plausible for metrics that are each an average over thousands of test images, and
a diverged seed widens the variance, which makes the test more cautious, not less. Pairing by seed
removes whatever two runs with one seed share (data order, evaluation subsample); where they share
nothing the paired test stays valid and only loses degrees of freedom. Unpaired seeds are left out:
only seeds both models ran count, and with fewer than 2 of them a pair is not tested (p = NaN,
note says so). Holm, not Bonferroni: it controls the same family-wise error rate, is never less
powerful, and assumes nothing about the dependence between pairs (pairs sharing a model are
dependent). Holm is computed here (sort, scale by m - i, running maximum): statsmodels' multipletests
gives the same numbers but runs a full gc.collect() on every Holm call, 0.2-1 s each once torch is
loaded, i.e. seconds to minutes for a report with dozens of (dataset, metric) columns.

Across datasets and metrics: the Friedman test on ranks (blocks = (dataset, metric) columns,
treatments = models) and the Nemenyi critical difference of Demsar (2006),
CD = q_alpha * sqrt(k (k + 1) / (6 N)), q_alpha being the studentized range quantile for k groups and
infinite degrees of freedom divided by sqrt(2) (scipy.stats.studentized_range). Two models whose mean
ranks differ by less than CD are not significantly different. Demsar assumes independent blocks:
several metrics of one dataset are correlated, so read the p-value over such blocks as descriptive.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd
from scipy import stats

PAIR_COLUMNS = ["model_a", "model_b", "n_pairs", "mean_diff", "statistic", "p_value", "p_holm",
                "significant", "better", "note"]
NOTE_TOO_FEW = "fewer than 2 shared seeds: not tested"
NOTE_IDENTICAL = "identical on every shared seed"
NOTE_CONSTANT = "same difference on every shared seed (no variance): not tested"
BEST, TIE = "best", "tie"
# Differences this small relative to the values are rounding (a CSV round trip, summation order), not
# signal: a t-test on them would divide by ~1e-17 and call a 1-ulp difference significant.
RELATIVE_TOLERANCE = 1e-12


def _check_alpha(alpha: float) -> None:
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie strictly between 0 and 1, got {alpha}")


# ---------------------------------------------------------------- one (dataset, metric): pairs of models


def _seed_table(values: pd.DataFrame) -> pd.DataFrame:
    """seed x model table of the finite values; models in order of first appearance in `values`."""
    missing = {"model", "seed", "value"} - set(values.columns)
    if missing:
        raise ValueError(f"values lacks column(s) {', '.join(sorted(missing))}; it needs model, seed, value")
    values = values.assign(value=pd.to_numeric(values["value"], errors="coerce"))
    finite = values[np.isfinite(values["value"].to_numpy(dtype=float))]
    twice = finite[finite.duplicated(["model", "seed"], keep=False)]
    if not twice.empty:
        model, seed = twice.iloc[0][["model", "seed"]]
        raise ValueError(f"model {model!r} has several values for seed {seed!r}: pass one dataset and one metric")
    models = list(pd.unique(values["model"]))  # a model with no finite value still gets its (untested) pairs
    return finite.pivot(index="seed", columns="model", values="value").reindex(columns=models)


def _compare_pair(a: pd.Series, b: pd.Series) -> dict:
    """Paired t-test of a - b on the seeds both have: n_pairs, mean_diff, statistic, p_value, note."""
    shared = a.notna() & b.notna()
    a, b = a[shared].to_numpy(dtype=float), b[shared].to_numpy(dtype=float)
    diff = a - b
    row = {"n_pairs": len(diff), "mean_diff": float(diff.mean()) if len(diff) else math.nan,
           "statistic": math.nan, "p_value": math.nan, "note": ""}
    if len(diff) < 2:
        return row | {"note": NOTE_TOO_FEW}
    tolerance = RELATIVE_TOLERANCE * max(1.0, float(np.abs(a).max()), float(np.abs(b).max()))
    if np.ptp(diff) <= tolerance:  # zero variance: t is 0/0 or x/0, scipy would warn and return NaN or inf
        if abs(row["mean_diff"]) <= tolerance:
            return row | {"mean_diff": 0.0, "statistic": 0.0, "p_value": 1.0, "note": NOTE_IDENTICAL}
        return row | {"note": NOTE_CONSTANT}
    test = stats.ttest_rel(a, b)
    return row | {"statistic": float(test.statistic), "p_value": float(test.pvalue)}


def holm(p_values: np.ndarray) -> np.ndarray:
    """Holm-adjusted p-values (step-down): the i-th smallest of m is scaled by m - i (i from 0), made
    non-decreasing in that order and capped at 1. A hypothesis is rejected at alpha iff its adjusted p <= alpha."""
    p = np.asarray(p_values, dtype=float)
    order = np.argsort(p, kind="stable")
    scaled = p[order] * np.arange(len(p), 0, -1)
    adjusted = np.empty_like(p)
    adjusted[order] = np.minimum(1.0, np.maximum.accumulate(scaled))  # a later step never rejects more easily
    return adjusted


def _holm_of_tested(p_values: pd.Series, alpha: float) -> tuple[pd.Series, pd.Series]:
    """Holm-adjusted p-values and rejections; untested pairs (p = NaN) are not part of the family."""
    adjusted = pd.Series(math.nan, index=p_values.index, dtype=float)
    tested = p_values.notna()
    adjusted[tested] = holm(p_values[tested].to_numpy())
    return adjusted, (adjusted <= alpha)  # NaN <= alpha is False: untested is never significant


def _better(row: pd.Series, higher_is_better: bool | None) -> str:
    if not row["significant"] or higher_is_better is None:
        return ""
    a_is_higher = row["mean_diff"] > 0
    return row["model_a"] if a_is_higher == bool(higher_is_better) else row["model_b"]


def pairwise_comparisons(values: pd.DataFrame, higher_is_better: bool | None, alpha: float = 0.05) -> pd.DataFrame:
    """Every pair of models of one dataset and one metric, compared over the seeds both ran.

    `values` has columns model, seed, value (one row per run; NaN or infinite values are ignored).
    Returns one row per pair (model_a before model_b in order of first appearance) with columns:
      model_a, model_b  the two models;
      n_pairs           number of seeds both models have a finite value for;
      mean_diff         mean of value_a - value_b over those seeds (NaN when there is none);
      statistic         paired t statistic (0.0 when identical, NaN when not tested);
      p_value           two-sided p of the paired t-test (1.0 when identical, NaN when not tested:
                        fewer than 2 shared seeds, or the same non-zero difference on every seed);
      p_holm            Holm-adjusted p over the tested pairs of this frame (NaN when not tested);
      significant       p_holm <= alpha (False when not tested);
      better            the better model of a significant pair, "" otherwise or when
                        higher_is_better is None (direction unknown);
      note              "" or why the pair was not tested / is identical.
    """
    _check_alpha(alpha)
    table = _seed_table(values)
    rows = [{"model_a": a, "model_b": b, **_compare_pair(table[a], table[b])}
            for a, b in itertools.combinations(table.columns, 2)]
    pairs = pd.DataFrame(rows, columns=[c for c in PAIR_COLUMNS if c not in ("p_holm", "significant", "better")])
    pairs["n_pairs"] = pairs["n_pairs"].astype(int)
    pairs["p_holm"], pairs["significant"] = _holm_of_tested(pairs["p_value"].astype(float), alpha)
    pairs["better"] = [_better(row, higher_is_better) for _, row in pairs.iterrows()] if len(pairs) else []
    return pairs[PAIR_COLUMNS].astype({"better": object, "note": object})


def best_marks(values: pd.DataFrame, higher_is_better: bool | None, alpha: float = 0.05,
               pairs: pd.DataFrame | None = None) -> dict:
    """Which models of one dataset and one metric to print in bold.

    Returns {model: mark} for every model in `values`, mark being
      "best"  the model with the best mean over its seeds, when it is significantly better (after Holm
              over all pairs of `values`) than EVERY other model, the runner-up included; or
      "tie"   when it is not: the best-mean model and every model not significantly worse than it
              (an untested pair counts as not significantly worse); or
      ""      any other model, every model when higher_is_better is None, a model with no finite
              value, and a model alone (nothing to beat).
    Requiring a win over every model, not only over the runner-up, keeps "best" honest when a noisier
    or less-seeded third model cannot be told apart from the leader. `pairs`: the result of
    pairwise_comparisons(values, higher_is_better, alpha), when the caller has it already.
    """
    table = _seed_table(values)
    marks = {model: "" for model in table.columns}
    means = table.mean().dropna()
    if higher_is_better is None or len(means) < 2:
        return marks
    leader = means.idxmax() if higher_is_better else means.idxmin()
    if pairs is None:
        pairs = pairwise_comparisons(values, higher_is_better, alpha)
    with_leader = pairs[(pairs["model_a"] == leader) | (pairs["model_b"] == leader)]
    beaten = set(with_leader.loc[with_leader["better"] == leader, ["model_a", "model_b"]].to_numpy().ravel())
    tied = [model for model in means.index if model == leader or model not in beaten]
    if tied == [leader]:
        marks[leader] = BEST
    else:
        marks.update({model: TIE for model in tied})
    return marks


# ---------------------------------------------------------------- across datasets and metrics: ranks


@dataclass(frozen=True)
class FriedmanResult:
    statistic: float  # Friedman chi-square (NaN with fewer than 3 models)
    p_value: float  # its p (NaN with fewer than 3 models)
    mean_ranks: pd.Series  # model -> mean rank over the complete blocks, best (lowest) first
    critical_difference: float  # Nemenyi CD at alpha: mean ranks closer than this are not different
    n_blocks: int  # complete blocks used (rows without a missing rank)
    alpha: float = 0.05


@lru_cache(maxsize=None)
def nemenyi_q(k: int, alpha: float = 0.05) -> float:
    """q_alpha of Demsar (2006): the studentized range quantile for k groups, infinite df, over sqrt(2)."""
    _check_alpha(alpha)
    if k < 2:
        raise ValueError(f"the critical difference needs at least 2 models, got {k}")
    return float(stats.studentized_range.ppf(1 - alpha, k, np.inf)) / math.sqrt(2)


def critical_difference(k: int, n_blocks: int, alpha: float = 0.05) -> float:
    """Nemenyi critical difference CD = q_alpha * sqrt(k (k + 1) / (6 N)) for k models over N blocks."""
    if n_blocks < 1:
        raise ValueError("the critical difference needs at least one block")
    return nemenyi_q(k, alpha) * math.sqrt(k * (k + 1) / (6 * n_blocks))


def _friedman(ranks: pd.DataFrame) -> tuple[float, float]:
    if ranks.shape[1] < 3:  # scipy's test needs 3 treatments; with 2 it would be a sign test
        return math.nan, math.nan
    if (ranks.nunique(axis=1) == 1).all():  # every block fully tied: scipy's tie correction divides by 0
        return 0.0, 1.0
    test = stats.friedmanchisquare(*ranks.T.to_numpy())
    return float(test.statistic), float(test.pvalue)


def friedman_nemenyi(ranks: pd.DataFrame, alpha: float = 0.05) -> FriedmanResult:
    """Friedman test and Nemenyi critical difference over blocks.

    `ranks`: rows = blocks ((dataset, metric) columns of the report), columns = models, values = rank
    within the block, 1 = best. Rows with a missing value are dropped (Friedman needs complete blocks);
    the rest are ranked again within each row (average ranks for ties), which changes nothing for
    proper ranks and repairs ranks that were computed among a different set of models.
    """
    _check_alpha(alpha)
    complete = ranks.dropna(how="any").astype(float)
    if complete.shape[1] < 2:
        raise ValueError(f"the Friedman test compares at least 2 models, got {complete.shape[1]}")
    if complete.empty:
        raise ValueError("no block ranks every model: the Friedman test needs complete blocks")
    reranked = complete.rank(axis=1, method="average")
    statistic, p_value = _friedman(reranked)
    mean_ranks = reranked.mean().sort_values(kind="stable")
    n_blocks, k = reranked.shape
    return FriedmanResult(statistic, p_value, mean_ranks, critical_difference(k, n_blocks, alpha), n_blocks, alpha)


def cd_groups(mean_ranks: pd.Series, cd: float) -> list[list]:
    """Maximal runs of models (sorted by mean rank) whose mean ranks span less than cd; each has >= 2 models."""
    ordered = mean_ranks.sort_values(kind="stable")
    names, r = list(ordered.index), ordered.to_numpy(dtype=float)
    groups, last_end = [], -1
    for start in range(len(r)):
        end = start
        while end + 1 < len(r) and r[end + 1] - r[start] < cd:
            end += 1
        if end > start and end > last_end:  # the end only moves right: a run ending earlier is inside the last one
            groups.append(names[start:end + 1])
            last_end = end
    return groups
