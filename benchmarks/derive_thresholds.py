"""Derive regression bounds from a multi-seed experiment, with a margin, as a thresholds TOML file.

    python cli.py run --profile smoke --seeds 0,1,2,3,4 --out /tmp/thresholds --jobs 2
    python benchmarks/derive_thresholds.py /tmp/thresholds/smoke > benchmarks/thresholds-smoke-digits.toml

Each bound starts from the WORST single seed (so the mean of any subset of seeds passes) and moves
away from it by max(3 standard deviations over seeds, a relative margin): 3% for the error and
accuracy metrics, 20% for FID (its spread over seeds is wide on 360 test images).

Each model also gets a bound on the share of its runs that the epoch cap stopped (stopped_by_cap):
at most one run in three, so a smoke grid of 3 seeds fails when two of them stop being converged.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from aebench.metrics.directions import HIGHER, direction  # noqa: E402

CHECKED = ["recon_sse", "knn5_acc", "linear_acc", "denoise_sse_s0.3", "trustworthiness_k10", "fid", "fid_gmm"]
RELATIVE_MARGIN = {"fid": 0.20, "fid_gmm": 0.20}  # both samplers' FID (protocol v2), the same noisy estimate
DEFAULT_RELATIVE_MARGIN = 0.03
MAX_CAP_SHARE = 0.34  # of a model's runs stopped by the epoch cap rather than early stopping


def bounds(metrics: pd.DataFrame, runs: pd.DataFrame):
    ok = metrics[metrics["metric"].isin(CHECKED)]
    for (dataset, model), rows in ok.groupby(["dataset", "model"], sort=False):
        mine = runs[(runs["dataset"] == dataset) & (runs["model"] == model) & (runs["status"] == "ok")]
        capped = int((mine["stopped"] == "cap").sum())
        lines = [f"stopped_by_cap = {{ max = {MAX_CAP_SHARE} }}  # {len(mine)} seeds: {capped} stopped by the epoch cap"]
        for metric in CHECKED:
            values = rows[rows["metric"] == metric]
            if values.empty:
                continue
            key = metric if not values["backbone"].notna().any() else f"{metric} [{values['backbone'].iloc[0]}]"
            v = values["value"]
            margin = max(3 * v.std(ddof=1), RELATIVE_MARGIN.get(metric, DEFAULT_RELATIVE_MARGIN) * abs(v.mean()))
            if direction(metric) == HIGHER:
                bound = f"min = {v.min() - margin:.4g}"
            else:
                bound = f"max = {v.max() + margin:.4g}"
            lines.append(f'"{key}" = {{ {bound} }}  # {len(v)} seeds: mean {v.mean():.4g}, std {v.std(ddof=1):.2g}, '
                         f"range {v.min():.4g}..{v.max():.4g}")
        yield dataset, model, lines


def main(folder: str) -> None:
    folder = Path(folder)
    runs = pd.read_csv(folder / "runs.csv")
    metrics = pd.read_csv(folder / "metrics.csv")
    metrics = metrics[metrics["run_id"].isin(runs.loc[runs["status"] == "ok", "run_id"])]
    commits = sorted(set(runs["git_commit"]))
    print(f"# Regression bounds for `python cli.py check`, derived by benchmarks/derive_thresholds.py from\n"
          f"# {folder} ({runs['profile'].iloc[0]} profile, seeds {sorted(set(runs['seed']))}, code {', '.join(commits)}).\n"
          f"# Each bound = worst seed moved by max(3 std, relative margin); the check compares the mean over seeds.")
    for dataset, model, lines in bounds(metrics, runs):
        print(f"\n[{dataset}.{model}]")
        print("\n".join(lines))


if __name__ == "__main__":
    main(sys.argv[1])
