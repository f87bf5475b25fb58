"""Demsar's (2006) critical-difference diagram of a Friedman / Nemenyi result (aebench/report/stats.py
computes it; this module only draws it)."""
from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pandas as pd

from aebench.plumbing.atomic import write_atomic
from aebench.report.stats import FriedmanResult, cd_groups

_STEP = 0.35  # vertical distance between two model labels (data units)
_GROUP_STEP = 0.12  # vertical distance between two group bars


def _draw_axis(ax, k: int) -> None:
    ax.plot([1, k], [0, 0], color="black", lw=1)
    for tick in np.arange(1, k + 0.01, 0.5):
        major = float(tick).is_integer()
        ax.plot([tick, tick], [0, 0.1 if major else 0.05], color="black", lw=1)
        if major:
            ax.text(tick, 0.15, str(int(tick)), ha="center", va="bottom", fontsize=9)


def _draw_cd_bar(ax, cd: float, alpha: float) -> None:
    y = 0.65
    ax.plot([1, 1 + cd], [y, y], color="black", lw=1.5)
    for x in (1, 1 + cd):
        ax.plot([x, x], [y - 0.05, y + 0.05], color="black", lw=1.5)
    ax.text(1 + cd / 2, y + 0.08, f"CD = {cd:.2f} (α = {alpha:g})", ha="center", va="bottom", fontsize=9)


def _draw_models(ax, mean_ranks: pd.Series, k: int, top: float) -> float:
    """Best half labelled on the left, the rest on the right; returns the lowest y used."""
    left_count = math.ceil(len(mean_ranks) / 2)
    y = top
    for i, (model, rank) in enumerate(mean_ranks.items()):
        on_left = i < left_count
        y = top - _STEP * (i if on_left else len(mean_ranks) - 1 - i)
        end = 1 - 0.15 * (k - 1) if on_left else k + 0.15 * (k - 1)
        ax.plot([rank, rank, end], [0, y, y], color="black", lw=0.8)
        ax.text(end + (-0.03 if on_left else 0.03), y, f"{model} ({rank:.2f})",
                ha="right" if on_left else "left", va="center", fontsize=9)
    return top - _STEP * (left_count - 1)


def cd_diagram(result: FriedmanResult, path: str | Path) -> Path:
    """Draw Demsar's critical-difference diagram of `result` as a PNG at `path`; returns the path.

    An axis of mean ranks (1 = best, on the left), each model hanging at its mean rank, a bar of length
    CD above the axis, and thick bars joining every maximal group of models whose mean ranks differ by
    less than CD (not significantly different).
    """
    from matplotlib.figure import Figure  # here: reading results and testing never needs matplotlib

    path = Path(path)
    ranks = result.mean_ranks.sort_values(kind="stable")
    k = len(ranks)
    groups = cd_groups(ranks, result.critical_difference)
    top = -0.25 - _GROUP_STEP * len(groups)  # the group bars sit between the axis and the first label
    fig = Figure(figsize=(7, 1.6 + 0.3 * math.ceil(k / 2) + 0.1 * len(groups)))
    ax = fig.add_subplot()
    ax.set_axis_off()
    _draw_axis(ax, k)
    _draw_cd_bar(ax, result.critical_difference, result.alpha)
    for g, members in enumerate(groups):
        y = -0.15 - _GROUP_STEP * g
        ax.plot([ranks[members[0]] - 0.03, ranks[members[-1]] + 0.03], [y, y], color="black", lw=3)
    bottom = _draw_models(ax, ranks, k, top)
    ax.set_xlim(1 - 0.2 * (k - 1), k + 0.2 * (k - 1))
    ax.set_ylim(bottom - 0.2, 1.0)
    p = "n/a" if math.isnan(result.p_value) else f"{result.p_value:.3g}"
    ax.set_title(f"Friedman p = {p} over {result.n_blocks} blocks", fontsize=9)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    write_atomic(path, buffer.getvalue())
    return path
