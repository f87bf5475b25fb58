"""The tune report's trade-off figure: per model, every trial's validation reconstruction against its
FID, the selected trial marked, so a reader sees what the criterion traded for what.

Written from tuning.csv's table (aebench.tune.tuner) into <tuning folder>/figures/tradeoff-<model>.png.
A model with no trial scored on both metrics gets no figure.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from aebench.report.figures import FIGURES, new_figure, save_png

X, Y = "val_recon_sse", "val_fid"
LOG_SPAN = 10  # values spanning more than this factor are drawn on a log axis


def tradeoff_figures(table: pd.DataFrame, folder: Path, criterion: str) -> list[Path]:
    """One figure per model of the table; the paths written."""
    if X not in table or Y not in table:
        return []
    paths = []
    for model, trials in table.groupby("model", sort=False):
        scored = trials[trials[X].notna() & trials[Y].notna()]
        if scored.empty:
            continue
        path = folder / FIGURES / f"tradeoff-{model}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        tradeoff(model, scored, len(trials), criterion, path)
        paths.append(path)
    return paths


def tradeoff(model: str, scored: pd.DataFrame, trials: int, criterion: str, path: Path) -> None:
    fig = new_figure(5.2, 4.2)
    ax = fig.subplots()
    others, chosen = scored[~scored["selected"]], scored[scored["selected"]]
    ax.scatter(others[X], others[Y], s=28, color="tab:blue", alpha=0.8, label="trial")
    ax.scatter(chosen[X], chosen[Y], s=160, marker="*", color="tab:red", zorder=3,
               label=f"selected (trial {chosen['trial'].iloc[0]})" if len(chosen) else "selected")
    for row in scored.itertuples():
        ax.annotate(str(row.trial), (getattr(row, X), getattr(row, Y)), textcoords="offset points", xytext=(4, 3),
                    fontsize=7, color="0.3")
    for axis, values in (("x", scored[X]), ("y", scored[Y])):
        if values.min() > 0 and values.max() / values.min() > LOG_SPAN:
            (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
    ax.set_xlabel("reconstruction SSE on validation (lower is better)")
    ax.set_ylabel("FID on validation (lower is better)")
    shown = f"{len(scored)} of {trials} trials" if len(scored) < trials else f"{trials} trials"
    ax.set_title(f"{model}: {shown}\nselected by {criterion.split(',')[0]}", fontsize=10)
    ax.legend(fontsize=8, loc="best")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    save_png(fig, path)
