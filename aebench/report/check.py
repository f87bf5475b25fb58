"""Regression check: an experiment's metrics against the bounds of a thresholds file (TOML).

Schema of the thresholds file: a table per dataset and model, one bound per metric.

    [digits.vae]                                # [DATASET.MODEL], names as in metrics.csv
    knn5_acc = { min = 0.85 }                   # the value must be >= 0.85
    recon_sse = { max = 3.0 }                   # the value must be <= 3.0
    linear_acc = { min = 0.8, max = 1.0 }       # both (min <= max)
    "fid [classifier-digits-v1]" = { max = 60 } # a qualified metric: the report's column name

- A metric key is the report's table column: the metric name, followed by its qualifiers in brackets
  where it has any (the backbone of an FID value), so that a bound never mixes FID backbones.
- A bound is an inline table (or a [DATASET.MODEL.METRIC] table) with `min`, `max` or both: finite
  numbers (integers or floats), min <= max, both inclusive. No other key is allowed.
- The value compared is the MEAN over the seeds of the experiment's successful runs of that model on
  that dataset (the number in the report's table).
- `stopped_by_cap = { max = 0.2 }` bounds the SHARE of that model's successful runs that the epoch cap
  stopped rather than early stopping (runs.csv `stopped`): a check that the runs converged.

A check fails (exit 1) when the value is outside its bound; when the experiment has no value for a
bound's dataset, model or metric ("missing": a bound never passes silently); when a run of a bounded
(dataset, model) failed (a model that diverges on one seed is a regression, even if other seeds are
fine); and when one model ran with several configurations on a dataset (which one is meant is unclear).
A file that is not readable TOML or breaks the schema is a UserError (exit 2), as is a bad experiment.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from aebench.errors import UserError
from aebench.plumbing.tomlfile import read_toml
from aebench.report.summary import summarize
from aebench.store.values import Results

BOUND_KEYS = ("min", "max")
STOPPED_BY_CAP = "stopped_by_cap"
EXAMPLE = "for example [digits.vae] knn5_acc = { min = 0.85 }"


@dataclass(frozen=True)
class Bound:
    dataset: str
    model: str
    metric: str
    min: float | None = None
    max: float | None = None

    @property
    def name(self) -> str:
        return f"{self.dataset}.{self.model}.{self.metric}"

    def describe(self) -> str:
        if self.min is not None and self.max is not None:
            return f"in [{self.min:g}, {self.max:g}]"
        return f">= {self.min:g}" if self.min is not None else f"<= {self.max:g}"

    def holds(self, value: float) -> bool:
        if math.isnan(value):
            return False
        return (self.min is None or value >= self.min) and (self.max is None or value <= self.max)


@dataclass(frozen=True)
class Outcome:
    name: str
    passed: bool
    text: str  # value and bound, or why there is no value

    def line(self) -> str:
        return f"{'PASS' if self.passed else 'FAIL'}  {self.name}: {self.text}"


# ---------------------------------------------------------------- the thresholds file


def load_thresholds(path: str | Path) -> list[Bound]:
    path = Path(path)
    document = read_toml(path, "thresholds file")
    bounds = []
    for dataset, models in document.items():
        for model, metrics in _table(models, path, dataset, "[DATASET.MODEL] tables").items():
            where = f"{dataset}.{model}"
            metrics = _table(metrics, path, where, "metric bounds")
            if not metrics:
                raise UserError(f"{path}: [{where}] has no bounds; {EXAMPLE}")
            bounds += [_bound(dataset, model, metric, spec, path) for metric, spec in metrics.items()]
    if not bounds:
        raise UserError(f"{path} holds no bounds; {EXAMPLE}")
    return bounds


def _table(value, path: Path, where: str, holds: str) -> dict:
    if not isinstance(value, dict):
        raise UserError(f"{path}: '{where}' must be a table of {holds}, not {value!r}; {EXAMPLE}")
    return value


def _bound(dataset: str, model: str, metric: str, spec, path: Path) -> Bound:
    where = f"{dataset}.{model}.{metric}"
    if not isinstance(spec, dict):
        raise UserError(f"{path}: {where} = {spec!r} is not a bound; write {metric} = {{ min = ... }} or {{ max = ... }}")
    unknown = set(spec) - set(BOUND_KEYS)
    if unknown:
        raise UserError(f"{path}: {where} has the unknown key {', '.join(repr(k) for k in sorted(unknown))}; "
                        f"allowed: {', '.join(BOUND_KEYS)}")
    if not spec:
        raise UserError(f"{path}: {where} = {{}} has neither min nor max")
    for key, value in spec.items():
        # bool is an int in Python; a TOML true/false is not a bound
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise UserError(f"{path}: {where}.{key} = {value!r} is not a finite number")
    low, high = spec.get("min"), spec.get("max")
    if low is not None and high is not None and low > high:
        raise UserError(f"{path}: {where} has min {low} > max {high}")
    return Bound(dataset, model, metric, None if low is None else float(low), None if high is None else float(high))


# ---------------------------------------------------------------- the checks


def check(bounds: list[Bound], results: Results) -> list[Outcome]:
    """One outcome per bound, plus one per bounded (dataset, model) with failed runs."""
    summary = pd.concat([summarize(results.values), cap_shares(results)], ignore_index=True)
    summary["base_model"] = summary["label"].map(dict(zip(results.values["label"], results.values["model"])))
    outcomes = []
    for dataset, model in dict.fromkeys((b.dataset, b.model) for b in bounds):
        outcome = _failed_runs(results.runs, dataset, model)
        if outcome is not None:
            outcomes.append(outcome)
    return outcomes + [_check_one(bound, summary) for bound in bounds]


def cap_shares(results: Results) -> pd.DataFrame:
    """Summary-like rows of the pseudo-metric stopped_by_cap: per (dataset, label), the share of the
    successful runs stopped by the epoch cap (NaN where runs.csv does not say: older results)."""
    ok = results.runs[results.runs["status"] == "ok"].merge(
        results.values[["run_id", "label"]].drop_duplicates(), on="run_id")
    if ok.empty:
        return pd.DataFrame(columns=["dataset", "label", "column", "mean", "n_seeds"])
    stopped = ok["stopped"] if "stopped" in ok else pd.Series(pd.NA, index=ok.index)
    capped = (stopped.astype(str) == "cap").astype(float).where(stopped.notna())
    shares = ok.assign(capped=capped).groupby(["dataset", "label"], sort=False)["capped"]
    rows = shares.agg(mean=lambda v: v.mean() if v.notna().all() else float("nan"), n_seeds="size").reset_index()
    return rows.assign(column=STOPPED_BY_CAP)


def _failed_runs(runs: pd.DataFrame, dataset: str, model: str) -> Outcome | None:
    mine = runs[(runs["dataset"] == dataset) & (runs["model"] == model)]
    failed = mine[mine["status"] != "ok"]
    if failed.empty:
        return None
    first = failed.iloc[0]
    reason = first.get("reason", "")
    reason = "" if pd.isna(reason) else f": {reason}"
    return Outcome(f"{dataset}.{model}", False, f"{len(failed)} of {len(mine)} runs failed (e.g. {first['run_id']}{reason})")


def _check_one(bound: Bound, summary: pd.DataFrame) -> Outcome:
    on_dataset = summary[summary["dataset"] == bound.dataset]
    if on_dataset.empty:
        return Outcome(bound.name, False, f"missing: no results on dataset '{bound.dataset}' "
                                          f"(the experiment has {', '.join(summary['dataset'].unique())})")
    mine = on_dataset[on_dataset["base_model"] == bound.model]
    if mine.empty:
        return Outcome(bound.name, False, f"missing: no successful run of '{bound.model}' on {bound.dataset} "
                                          f"(models there: {', '.join(on_dataset['base_model'].unique())})")
    labels = mine["label"].unique()
    if len(labels) > 1:
        return Outcome(bound.name, False, f"ambiguous: {bound.model} ran on {bound.dataset} with {len(labels)} "
                                          f"configurations ({', '.join(labels)}); keep one per experiment")
    row = mine[mine["column"] == bound.metric]
    if row.empty:
        return Outcome(bound.name, False, f"missing: no value (metrics of {bound.model} on {bound.dataset}: "
                                          f"{', '.join(mine['column'])})")
    value, seeds = float(row["mean"].iloc[0]), int(row["n_seeds"].iloc[0])
    if bound.metric == STOPPED_BY_CAP:
        what = "unknown: runs.csv does not say why runs stopped" if math.isnan(value) else f"{value:.6g} of {seeds} runs"
        return Outcome(bound.name, bound.holds(value), f"{what} stopped by the epoch cap, bound {bound.describe()}")
    return Outcome(bound.name, bound.holds(value), f"{value:.6g} (mean of {seeds} seed{'s' * (seeds != 1)}), "
                                                   f"bound {bound.describe()}")
