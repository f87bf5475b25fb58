"""95% intervals of the per-image metrics that resample test images as well as seeds: per (dataset,
model, column) in summary.csv (ci_low, ci_high, ci_note, beside the seed std), and of a pair's
difference in the claims. The bootstrap is aebench/report/bootstrap.py's; the values come from
per_image/<run_id>.npz (aebench/store/per_image.py).

Which metrics: those that are a mean over test images, one value per image (recon_sse, recon_mse,
denoise_sse_s*, knn{k}_acc). Any other metric (FID, KID, probes fitted on the whole set) has no per-image values and
keeps the seed std only: its interval cells are empty and so is its note. A per-image metric without
per-image values (an experiment from before them, a missing file) has empty cells and a note saying why.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from aebench.report.bootstrap import LEVEL, RESAMPLES, mean_interval, paired_difference_interval
from aebench.store.per_image import PerImageStore
from aebench.store.values import Results

PER_IMAGE_METRIC = re.compile(r"recon_(sse|mse)|denoise_sse_s[0-9.]+|knn\d+_acc")
METHOD = (f"{LEVEL:.0%} bootstrap interval: seeds resampled, then test images within each seed "
          f"({RESAMPLES} resamples, percentiles)")
INTERVAL_COLUMNS = ["ci_low", "ci_high", "ci_note"]
ROW_COLUMNS = ["run_id", "seed", "metric", "n", "value"]  # what a member's rows need (one per seed)


def is_per_image(metric: str) -> bool:
    return bool(PER_IMAGE_METRIC.fullmatch(str(metric)))


@dataclass(frozen=True)
class Interval:
    low: float = math.nan
    high: float = math.nan
    note: str = ""  # METHOD when computed; else why there is none ("" for a metric not per image)

    @property
    def found(self) -> bool:
        return not math.isnan(self.low)

    def text(self) -> str:
        return f"[{self.low:.3g}, {self.high:.3g}]" if self.found else (self.note or "—")


def _per_seed(store: PerImageStore, rows: pd.DataFrame) -> dict | str:
    """seed -> per-image values of one member's runs, or the first reason one is missing."""
    arrays = {}
    for row in rows.sort_values("seed").itertuples():
        found = store.values(row.run_id, row.metric, row.n, float(row.value))
        if isinstance(found, str):
            return found
        arrays[row.seed] = found
    return arrays


def member_interval(store: PerImageStore, rows: pd.DataFrame) -> Interval:
    """Interval of the mean over seeds of one model's (or objective's) runs, `rows` one per seed."""
    if rows.empty or not is_per_image(rows["metric"].iloc[0]):
        return Interval()
    arrays = _per_seed(store, rows)
    if isinstance(arrays, str):
        return Interval(note=arrays)
    return Interval(*mean_interval(list(arrays.values())), METHOD)


def difference_interval(store: PerImageStore, ours: pd.DataFrame, theirs: pd.DataFrame) -> Interval:
    """Interval of mean(ours) - mean(theirs) over the seeds both ran, paired image by image within each
    seed (both members' rows from one experiment folder, one row per seed)."""
    if ours.empty or not is_per_image(ours["metric"].iloc[0]):
        return Interval()
    shared = sorted(set(ours["seed"]) & set(theirs["seed"]))
    if not shared:
        return Interval(note="no seed both ran")
    a, b = (_per_seed(store, rows[rows["seed"].isin(shared)]) for rows in (ours, theirs))
    for found in (a, b):
        if isinstance(found, str):
            return Interval(note=found)
    if any(len(a[s]) != len(b[s]) for s in shared):
        return Interval(note="the two were scored on different numbers of test images: no pairing")
    return Interval(*paired_difference_interval([a[s] for s in shared], [b[s] for s in shared]), METHOD)


def add_intervals(summary: pd.DataFrame, results: Results) -> pd.DataFrame:
    """The summary with INTERVAL_COLUMNS for each (dataset, label, column); unchanged when the experiment
    has no per_image/ folder (then summary.csv keeps protocol v1's columns and the report says why)."""
    store = PerImageStore(results.folder, results.run_folders())
    if not store.exists:
        return summary
    found = {}
    for key, rows in results.values.groupby(["dataset", "label", "column"], sort=False):
        finite = rows[np.isfinite(rows["value"].to_numpy(dtype=float))]
        found[key] = member_interval(store, finite[ROW_COLUMNS])
    intervals = [found.get((r.dataset, r.label, r.column), Interval()) for r in summary.itertuples()]
    return summary.assign(ci_low=[i.low for i in intervals], ci_high=[i.high for i in intervals],
                          ci_note=[i.note for i in intervals])


def interval_reasons(summary: pd.DataFrame) -> str:
    """One sentence for the report on the per-image intervals of the summary: where they are, or why
    there are none."""
    if not summary["metric"].map(is_per_image).any():
        return ""
    if "ci_low" not in summary:
        return ("No per_image/ folder in this experiment (its runs predate per-image values), so the per-image "
                "metrics have no interval that resamples test images; their ± is over seeds only.")
    missing = summary[summary["metric"].map(is_per_image) & summary["ci_low"].isna()]
    text = (f"summary.csv gives each per-image metric (recon_sse, recon_mse, denoise_sse_s*, knn{{k}}_acc) a "
            f"{METHOD} (ci_low, ci_high) beside the seed std.")
    if len(missing):
        text += f" {len(missing)} have none; ci_note says why (e.g. {missing['ci_note'].iloc[0]})."
    return text
