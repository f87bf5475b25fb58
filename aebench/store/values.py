"""Finding and reading one experiment: its folder under the results folder, and the values of its
successful runs (metrics.csv joined with runs.csv) with their model labels and table columns.

Reads only the experiment's CSV files. A failed run never contributes a value and is kept apart
(Results.failed). Each value keeps its qualifiers (split, n, backbone): a table column is one metric
with one set of qualifiers, so FID values of different backbones never share a column.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from aebench.errors import UserError
from aebench.plumbing.precision import DEFAULT_PRECISION
from aebench.store.folder import METRIC_COLUMNS, read_csv

RUN_COLUMNS_NEEDED = ["run_id", "model", "dataset", "seed", "status"]
# What makes two runs of one model the same configuration, the seed aside (the profile's name does
# not: two profiles with identical settings give identical numbers).
CONFIG_COLUMNS = ["hparams", "train_config", "eval_config", "binarize"]


def _has_results(folder: Path) -> bool:
    return (folder / "metrics.csv").is_file() or (folder / "runs.csv").is_file()


def list_experiments(out: str | Path) -> list[Path]:
    out = Path(out)
    if not out.is_dir():
        return []
    return sorted(p for p in out.iterdir() if p.is_dir() and _has_results(p))


def _last_written(folder: Path) -> float:
    # The CSV files, not the folder: writing a report into an old experiment must not make it the latest.
    return max(p.stat().st_mtime for p in (folder / "metrics.csv", folder / "runs.csv") if p.is_file())


def _existing(out: Path) -> str:
    names = [p.name for p in list_experiments(out)]
    return f"experiments under {out}: {', '.join(names)}" if names else f"there are no experiments under {out}"


def resolve_experiment(name: str | None, out: str | Path = "results") -> Path:
    """The experiment folder: `name` under `out`, else `name` as a path; None -> the latest under `out`."""
    out = Path(out)
    if name is None:
        found = list_experiments(out)
        if not found:
            raise UserError(f"no experiment found: {out} has no folder with runs.csv or metrics.csv; "
                            f"run `python cli.py run` first, or name the experiment or its --out folder")
        return max(found, key=_last_written)
    for candidate in (out / name, Path(name)):
        if candidate.is_dir():
            if not _has_results(candidate):
                raise UserError(f"{candidate} holds no results (no runs.csv or metrics.csv); {_existing(out)}")
            return candidate
    raise UserError(f"experiment '{name}' not found (neither {out / name} nor {name} is a folder); {_existing(out)}")


@dataclass
class Results:
    """The successful values of one experiment (one row per run and metric) and its failed runs."""

    folder: Path
    values: pd.DataFrame  # metrics.csv rows of ok runs, plus `label` (model, with config if several) and `column`
    runs: pd.DataFrame  # plus `folder`: the experiment folder holding each run's files
    failed: pd.DataFrame
    reference: Path | None = None  # `report --against`: the folder some runs were read from

    def run_folders(self) -> dict[str, Path]:
        """Each run's experiment folder (its per_image/, history/, samples/, checkpoints/)."""
        return {str(r): Path(f) for r, f in zip(self.runs["run_id"], self.runs["folder"])}


def run_precisions(runs: pd.DataFrame) -> pd.Series:
    """Each run's training precision; a runs.csv written before the column existed trained in fp32."""
    if "precision" not in runs:
        return pd.Series(DEFAULT_PRECISION, index=runs.index, dtype=object)
    return runs["precision"].astype(object).where(runs["precision"].notna(), DEFAULT_PRECISION).astype(str)


def _config_labels(ok_runs: pd.DataFrame) -> pd.Series:
    """The model name, "model@bf16" for a run trained in another precision than fp32 (never averaged with
    fp32 runs), and " (abc123)" added where one such name ran with several configurations on a dataset."""
    model = ok_runs["model"].astype(str) + run_precisions(ok_runs).map(
        lambda p: "" if p == DEFAULT_PRECISION else f"@{p}")
    present = [c for c in CONFIG_COLUMNS if c in ok_runs.columns]
    if not present or ok_runs.empty:
        return model
    keys = ok_runs[present].astype(str).agg("|".join, axis=1)
    digest = keys.map(lambda k: hashlib.sha256(k.encode()).hexdigest()[:6])
    configs = digest.groupby([ok_runs["dataset"], model]).transform("nunique")
    return model.where(configs <= 1, model + " (" + digest + ")")


def column_labels(values: pd.DataFrame) -> pd.Series:
    """Table column of each value: the metric, with its backbone in brackets, and split / n added where
    they differ between values of that metric (and backbone) on one dataset."""
    base = values["metric"] + values["backbone"].map(lambda b: f" [{b}]" if b else "")
    varies = {q: values.groupby([values["dataset"], base])[q].transform("nunique") > 1 for q in ("split", "n")}

    def label(i) -> str:
        qualifiers = [values.at[i, "backbone"]] if values.at[i, "backbone"] else []
        qualifiers += [f"{q}={values.at[i, q]}" for q in ("split", "n") if varies[q].at[i]]
        return values.at[i, "metric"] + (f" [{', '.join(qualifiers)}]" if qualifiers else "")

    return pd.Series([label(i) for i in values.index], index=values.index, dtype=object)


def load_results(folder: str | Path) -> Results:
    folder = Path(folder)
    metrics = read_csv(folder / "metrics.csv", METRIC_COLUMNS)
    runs = read_csv(folder / "runs.csv", RUN_COLUMNS_NEEDED)
    runs["status"] = runs["status"].fillna("").astype(str)
    runs["folder"] = str(folder)
    failed = runs[runs["status"] != "ok"]
    ok = runs[runs["status"] == "ok"].copy()
    ok["label"] = _config_labels(ok)
    # A metric row without an ok run row is a leftover of an interrupted or failed run: not a result.
    values = metrics.merge(ok[["run_id", "label"]], on="run_id", how="inner")
    if values.empty:
        what = f"{len(runs)} runs recorded, {len(failed)} failed"
        if len(failed):
            reason = failed["reason"].iloc[0] if "reason" in failed else ""
            what += f", e.g. {failed['run_id'].iloc[0]}" + (f": {reason}" if isinstance(reason, str) and reason else "")
        raise UserError(f"{folder} has no metric values of successful runs ({what}); {_existing(folder.parent)}")
    for qualifier in ("split", "backbone"):
        values[qualifier] = values[qualifier].astype(object).fillna("").astype(str)
    values["n"] = values["n"].astype("Int64")
    values["column"] = column_labels(values)
    return Results(folder, values, runs, failed)


def experiment_note(folder: str | Path) -> str:
    """The `note` of the command that last ran in the experiment (config.json), e.g. how a tuned study's
    hyperparameters were chosen; "" when there is none or the file is unreadable (it is not a result)."""
    try:
        return str(json.loads((Path(folder) / "config.json").read_text())["config"].get("note") or "")
    except (OSError, ValueError, KeyError, AttributeError, TypeError):
        return ""
