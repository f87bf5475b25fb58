"""Is a profile's epoch cap a limit that early stopping never reaches? Measured on finished experiments.

    python benchmarks/epoch_budget.py results/reference/tune-standard-mnist [more experiment folders]

For each (dataset, model) of the runs trained in those folders (runs.csv, status ok; rescored runs,
which trained nothing, are left out): the time per epoch (train_seconds / epochs_run, median over
runs), the epochs run (min, median, max), the cap (train_config epochs), the share of runs the cap
stopped rather than early stopping (target 0), and the headroom: the cap over the most epochs any
run needed. The times are those of the machine and load the runs had (runs.csv `device`; with
--jobs 2 on 2 cores each run had one core).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from aebench.store.folder import ResultsStore, rescored  # noqa: E402


def trained_runs(folders: list[Path]) -> pd.DataFrame:
    frames = []
    for folder in folders:
        if not (folder / "runs.csv").is_file():
            sys.exit(f"{folder}: no runs.csv; give experiment folders")
        runs = ResultsStore(folder).runs()
        runs = runs[(runs["status"] == "ok") & ~rescored(runs)]
        frames.append(runs.assign(folder=folder.name))
    runs = pd.concat(frames, ignore_index=True)
    runs["cap"] = runs["train_config"].map(lambda text: json.loads(text)["epochs"])
    runs["seconds_per_epoch"] = runs["train_seconds"].astype(float) / runs["epochs_run"].astype(float)
    return runs


def budget_table(runs: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for (dataset, model), group in runs.groupby(["dataset", "model"], sort=False):
        epochs = group["epochs_run"].astype(int)
        rows.append({"dataset": dataset, "model": model, "runs": len(group),
                     "s/epoch": round(group["seconds_per_epoch"].median(), 1),
                     "epochs min/median/max": f"{epochs.min()}/{int(epochs.median())}/{epochs.max()}",
                     "cap": int(group["cap"].max()),
                     "stopped by cap": f"{int((group['stopped'] == 'cap').sum())} of {len(group)}",
                     "headroom": f"{group['cap'].max() / epochs.max():.1f}x"})
    return pd.DataFrame(rows)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="+", type=Path)
    args = parser.parse_args(argv)
    runs = trained_runs(args.folders)
    if runs.empty:
        sys.exit("no trained runs with status ok in those folders")
    table = budget_table(runs)
    print("| " + " | ".join(table.columns) + " |\n|" + "---|" * len(table.columns))
    for row in table.itertuples(index=False):
        print("| " + " | ".join(map(str, row)) + " |")
    capped = (runs["stopped"] == "cap").mean()
    print(f"\n{len(runs)} runs from {', '.join(f.name for f in args.folders)}; share stopped by the cap: {capped:.0%}")


if __name__ == "__main__":
    main()
