"""The numbers of the report: per (dataset, model, column) the mean and the SAMPLE standard deviation
(ddof = 1) over the seeds of the successful runs, ranks, significance marks and the Friedman test.

Marks come from aebench/report/stats.py, not from the means alone: within each (dataset, column) every pair
of models is compared by a paired t-test over their shared seeds, Holm-corrected per column. A value
is bold only when its model is significantly better than every other model; the models not
significantly worse than the best mean are marked as tied; where no pair could be tested (one seed)
the best mean is marked "untested". Every pair is written to comparisons.csv. Across datasets and
metrics, a Friedman test on the ranks with the Nemenyi critical difference (and its CD diagram).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from aebench.metrics.directions import HIGHER, LOWER, direction
from aebench.report.stats import PAIR_COLUMNS, FriedmanResult, best_marks, friedman_nemenyi, pairwise_comparisons
from aebench.store.values import Results

COMPARISON_COLUMNS = ["dataset", "column", *PAIR_COLUMNS]
ALPHA = 0.05  # family-wise error rate of each column's Holm correction, and the Nemenyi CD's level
UNTESTED = "untested"  # the best mean of a column where no pair of models shares 2 seeds
HIGHER_IS_BETTER = {HIGHER: True, LOWER: False}


def summarize(values: pd.DataFrame) -> pd.DataFrame:
    """One row per (dataset, model label, column): mean, sample std and count over seeds, the column's
    direction and the model's rank by mean (1 = best, ties share the average rank). Only columns with a
    known direction and at least two models are ranked: a model alone in a column is neither best nor
    worst there. Which differences are significant is significance()'s business, not this one's."""
    keys = ["dataset", "label", "column", "metric", "split", "n", "backbone"]
    summary = (values.groupby(keys, sort=False, dropna=False)["value"]
               .agg(mean="mean", std=lambda v: v.std(ddof=1), n_seeds="count").reset_index())
    summary["model"] = summary["label"]
    summary["direction"] = pd.Series([direction(m) for m in summary["metric"]], index=summary.index, dtype=object)
    summary["rank"] = np.nan
    for _, index in summary.groupby(["dataset", "column"], sort=False).groups.items():
        group = summary.loc[index]
        way = group["direction"].iloc[0]
        if way in (HIGHER, LOWER) and group["mean"].notna().sum() >= 2:
            summary.loc[index, "rank"] = group["mean"].rank(ascending=(way == LOWER), method="average")
    return summary


def mean_ranks(summary: pd.DataFrame) -> pd.Series:
    """(dataset, label) -> the model's rank averaged over the ranked columns of that dataset."""
    return summary.dropna(subset=["rank"]).groupby(["dataset", "label"], sort=False)["rank"].mean()


def column_marks(values: pd.DataFrame, higher_is_better: bool | None) -> tuple[pd.DataFrame, dict]:
    """The pairs (stats.pairwise_comparisons) and each model's mark (stats.best_marks) of one (dataset,
    column); `values` has columns model, seed, value. Where no pair of models shares 2 seeds nothing can
    be tested: the best mean (ties all) is marked UNTESTED instead of every model being "tied"."""
    pairs = pairwise_comparisons(values, higher_is_better, ALPHA)
    finite = values[np.isfinite(values["value"].to_numpy(dtype=float))]
    means = finite.groupby("model", sort=False)["value"].mean()
    if higher_is_better is None or len(means) < 2 or (pairs["n_pairs"] >= 2).any():
        return pairs, best_marks(values, higher_is_better, ALPHA, pairs)
    best = means.max() if higher_is_better else means.min()
    return pairs, {model: UNTESTED if means.get(model) == best else "" for model in pd.unique(values["model"])}


def significance(values: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every pair of models compared in each (dataset, column) (COMPARISON_COLUMNS, comparisons.csv)
    and each model's mark there (dataset, column, label, mark: BEST, TIE, UNTESTED or "")."""
    pair_frames, mark_rows = [], []
    for (dataset, column), part in values.groupby(["dataset", "column"], sort=False):
        way = direction(part["metric"].iloc[0])
        seeds = part[["label", "seed", "value"]].rename(columns={"label": "model"})
        pairs, marks = column_marks(seeds, HIGHER_IS_BETTER.get(way))
        if len(pairs):
            pair_frames.append(pairs.assign(dataset=dataset, column=column))
        mark_rows += [(dataset, column, label, mark) for label, mark in marks.items()]
    comparisons = (pd.concat(pair_frames, ignore_index=True)[COMPARISON_COLUMNS] if pair_frames
                   else pd.DataFrame(columns=COMPARISON_COLUMNS))
    return comparisons, pd.DataFrame(mark_rows, columns=["dataset", "column", "label", "mark"])


def add_marks(summary: pd.DataFrame, marks: pd.DataFrame) -> pd.DataFrame:
    """The summary with a `mark` column (significance()'s mark; "" where none)."""
    marked = summary.merge(marks, on=["dataset", "column", "label"], how="left")
    return marked.assign(mark=marked["mark"].fillna("").astype(str))


def friedman_over_columns(summary: pd.DataFrame) -> FriedmanResult | str:
    """Friedman test and Nemenyi CD over the blocks = ranked (dataset, column) columns in which every
    model (label) has a value; treatments = models. With fewer than 3 models or fewer than 2 such
    blocks, the reason why there is no test (a str)."""
    labels = list(summary["label"].drop_duplicates())
    if len(labels) < 3:
        return f"fewer than 3 models ({len(labels)}), so no Friedman test and no critical-difference diagram"
    ranked = summary.dropna(subset=["rank"])
    ranks = ranked.pivot(index=["dataset", "column"], columns="label", values="rank").reindex(columns=labels)
    complete = ranks.dropna(how="any")
    if len(complete) < 2:
        return (f"fewer than 2 blocks ({len(complete)}) in which all {len(labels)} models have a ranked value, "
                f"so no Friedman test and no critical-difference diagram")
    return friedman_nemenyi(complete, ALPHA)


def under_trained_counts(results: Results) -> pd.Series:
    """(dataset, label) -> number of successful runs stopped by the epoch cap (runs.csv `stopped`)."""
    ok = results.runs[results.runs["status"] == "ok"]
    if "stopped" not in ok:
        return pd.Series(dtype=int)
    labels = results.values.drop_duplicates("run_id").set_index("run_id")["label"]
    capped = ok[ok["stopped"].astype(str) == "cap"]
    return capped.assign(label=capped["run_id"].map(labels)).groupby(["dataset", "label"]).size()
