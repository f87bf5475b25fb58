"""Copying finished runs from other experiments instead of training them again (`run --reuse-from`).

A run id hashes everything that determines a run's numbers (model, dataset, seed, hyperparameters,
training and evaluation settings, binarisation), so a run of another experiment folder with the same id,
finished ok, is the run this grid would train: on the same machine type, the same numbers. Such a run is
copied into this experiment whole (its runs.csv row with its code commit and times, its metrics,
history, samples and checkpoint) and the grid skips it. The SWAE ablation uses it: its `swae` cells
are the reference study's SWAE runs, trained once.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from aebench.store.folder import METRIC_COLUMNS, RUN_COLUMNS, ResultsStore, read_csv, read_per_image, require_runs_file

NEEDED = ["run_id", "status"]


def _optional_bytes(path: Path) -> bytes | None:
    return path.read_bytes() if path.is_file() else None


def _history(path: Path) -> list[dict]:
    return pd.read_csv(path).to_dict("records") if path.is_file() else []


def reuse_sources(folders: list[str | Path]) -> list[Path]:
    """The folders as paths; UserError, before anything is written, for one without runs.csv."""
    return [require_runs_file(Path(folder), "--reuse-from").parent for folder in folders]


def copy_finished_runs(run_ids: list[str], sources: list[Path], store: ResultsStore) -> list[str]:
    """Copy into `store` every run of `run_ids` not recorded there that a source folder finished ok
    (the first source that has it); returns the copied ids."""
    recorded = store.recorded()
    wanted = [run_id for run_id in run_ids if recorded.get(run_id) != "ok"]
    copied = []
    for source in sources:
        if source.resolve() == store.folder.resolve():
            continue  # this experiment itself: nothing to copy
        runs = read_csv(source / "runs.csv", NEEDED)
        finished = runs[(runs["status"] == "ok") & runs["run_id"].isin(wanted) & ~runs["run_id"].isin(copied)]
        if finished.empty:
            continue
        metrics = read_csv(source / "metrics.csv", METRIC_COLUMNS)
        for row in finished.to_dict("records"):
            run_id = row["run_id"]
            run = {column: row.get(column) for column in RUN_COLUMNS}
            store.record(run, metrics[metrics["run_id"] == run_id].to_dict("records"),
                         _history(source / "history" / f"{run_id}.csv"),
                         _optional_bytes(source / "checkpoints" / f"{run_id}.pt"),
                         _optional_bytes(source / "samples" / f"{run_id}.png"),
                         read_per_image(source / "per_image" / f"{run_id}.npz"))
            copied.append(run_id)
    return copied
