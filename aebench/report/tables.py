"""The report's tables, independent of any output format: one Table per dataset (models as rows, the
summary's columns, each cell with its mean, std, seed count and mark), the headline subset, and the
words that go with a table (the verdict per column and the notes under it).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from aebench.metrics.directions import HIGHER, direction
from aebench.report.stats import BEST, TIE
from aebench.report.summary import UNTESTED, mean_ranks, under_trained_counts
from aebench.store.values import Results

UNDER_TRAINED_MARK = "†"
# The headline table's metrics, in this order (each FID backbone its own column), where measured.
HEADLINE_METRICS = ["recon_sse", "knn5_acc", "linear_acc", "fid", "fid_gmm", "nn_train_ratio"]  # fid_gmm: protocol v2


@dataclass
class Cell:
    mean: float
    std: float
    n_seeds: int
    mark: str = ""  # BEST, TIE, UNTESTED or ""


@dataclass
class Table:
    """One dataset's table: models as rows, columns as in the summary, ready for any renderer."""

    dataset: str
    columns: list[str]
    directions: dict[str, str | None]
    qualifiers: dict[str, tuple[str, str, str]]  # column -> (split, n, backbone)
    rows: list["Row"]
    metrics: dict[str, str] = field(default_factory=dict)  # column -> metric


@dataclass
class Row:
    label: str
    seeds: int
    cells: dict[str, Cell]
    rank: float  # mean rank
    under_trained: int = 0  # runs of this row that the epoch cap stopped, not early stopping

    @property
    def mark(self) -> str:
        return UNDER_TRAINED_MARK if self.under_trained else ""


def build_tables(results: Results, summary: pd.DataFrame) -> list[Table]:
    """One Table per dataset; `summary` as add_marks() returns it (without `mark`, nothing is marked)."""
    ranks = mean_ranks(summary)
    capped = under_trained_counts(results)
    summary = summary if "mark" in summary else summary.assign(mark="")
    tables = []
    for dataset in summary["dataset"].drop_duplicates():
        part = summary[summary["dataset"] == dataset]
        columns = list(part["column"].drop_duplicates())
        first = part.drop_duplicates("column").set_index("column")
        qualifiers = {c: (first.at[c, "split"], "" if pd.isna(first.at[c, "n"]) else str(first.at[c, "n"]),
                          first.at[c, "backbone"]) for c in columns}
        seeds = results.values[results.values["dataset"] == dataset].groupby("label", sort=False)["seed"].nunique()
        rows = []
        for label in part["label"].drop_duplicates():
            mine = part[part["label"] == label]
            cells = {r.column: Cell(r.mean, r.std, int(r.n_seeds), r.mark) for r in mine.itertuples()}
            rows.append(Row(label, int(seeds[label]), cells, float(ranks.get((dataset, label), np.nan)),
                            int(capped.get((dataset, label), 0))))
        metrics = {c: first.at[c, "metric"] for c in columns}
        tables.append(Table(dataset, columns, {c: direction(m) for c, m in metrics.items()}, qualifiers, rows, metrics))
    return tables


def headline_table(table: Table) -> Table:
    """The table restricted to the HEADLINE_METRICS columns that exist, in that order."""
    return replace(table, columns=[c for m in HEADLINE_METRICS for c in table.columns if table.metrics.get(c) == m])


# ---------------------------------------------------------------- the verdict and notes in words


def join_names(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def verdict(table: Table, column: str) -> str:
    """One sentence on one column, from its marks: the significant best, the best mean and the models
    not significantly different from it (and those significantly behind), the untested best mean, or
    why nothing is marked."""
    cells = {row.label: row.cells[column] for row in table.rows
             if column in row.cells and not math.isnan(row.cells[column].mean)}
    way = table.directions[column]
    if way is None:
        return f"{column}: no direction is better; shown, not marked or ranked"
    if len(cells) < 2:
        return f"{column}: {join_names(list(cells)) if cells else 'no model'} alone; nothing to compare"
    ordered = sorted(cells, key=lambda label: cells[label].mean, reverse=(way == HIGHER))
    marked = {mark: [label for label in ordered if cells[label].mark == mark] for mark in (BEST, TIE, UNTESTED)}
    if marked[BEST]:
        return f"{column}: {marked[BEST][0]} best (significant against every other model, paired t-test, Holm)"
    if marked[UNTESTED]:
        return f"{column}: {join_names(marked[UNTESTED])} best mean, untested (fewer than 2 shared seeds: no test possible)"
    tied = marked[TIE]
    if not tied:
        return f"{column}: not marked"
    behind = [label for label in ordered if label not in tied]
    # "Not significantly different" is not "equal": with few seeds a wide gap can still be untestable.
    text = f"{column}: best mean {tied[0]}, not significantly better than {join_names(tied[1:])}"
    return text + (f"; {join_names(behind)} significantly behind {tied[0]}" if behind else "")


def untested_note(table: Table) -> str:
    columns = [c for c in table.columns if any(c in row.cells and row.cells[c].mark == UNTESTED for row in table.rows)]
    if not columns:
        return ""
    return (f"No significance test was possible in {join_names(columns)}: no pair of models shares 2 seeds (e.g. one "
            f"seed per model), so nothing there is marked significant; \"(untested)\" only shows the best mean. "
            f"Run several seeds (e.g. --seeds 0,1,2) to test.")


def under_trained_note(table: Table) -> str:
    rows = [row for row in table.rows if row.under_trained]
    if not rows:
        return ""
    counts = ", ".join(f"{row.label} {row.under_trained} of {row.seeds}" for row in rows)
    return (f"{UNDER_TRAINED_MARK} under-trained: the value includes runs that the epoch cap stopped while the "
            f"validation loss could still improve, not early stopping ({counts}); read them as lower bounds of "
            f"what the model reaches.")


def qualifier_note(table: Table) -> str:
    """Which split, n and backbone each column's values come from, grouped so the note stays short."""
    groups: dict[tuple, list[str]] = {}
    for column, q in table.qualifiers.items():
        groups.setdefault(q, []).append(column)
    parts = []
    for (split, n, backbone), columns in groups.items():
        what = ", ".join(x for x in (f"split {split}" if split else "", f"n = {n}" if n else "",
                                     f"backbone {backbone}" if backbone else "") if x)
        parts.append(f"{what or 'no qualifiers'}: {', '.join(columns)}" if len(groups) > 1 else f"{what or 'no qualifiers'}")
    return ("Every value: " + parts[0] + ".") if len(groups) == 1 else ("Values: " + "; ".join(parts) + ".")
