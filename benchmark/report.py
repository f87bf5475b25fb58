"""The report of one experiment: tables (Markdown, LaTeX, tidy CSV, terminal) and figures.

Reads only the experiment's CSV files (metrics.csv, runs.csv); history/, samples/ and checkpoints/
add figures when they are there. Numbers in every table are the mean and the SAMPLE standard
deviation (ddof = 1) over the seeds of the successful runs; a failed run never contributes a value
and is listed on its own. Each value keeps its qualifiers (split, n, backbone): a table column is
one metric with one set of qualifiers, so FID values of different backbones never share a column.
"""
from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.atomic import write_atomic
from benchmark.errors import UserError
from benchmark.metrics.directions import ARROWS, HIGHER, LOWER, direction
from benchmark.results import METRIC_COLUMNS, read_csv

RUN_COLUMNS_NEEDED = ["run_id", "model", "dataset", "seed", "status"]
# What makes two runs of one model the same configuration, the seed aside (the profile's name does
# not: two profiles with identical settings give identical numbers).
CONFIG_COLUMNS = ["hparams", "train_config", "eval_config", "binarize"]
UNDER_TRAINED_MARK = "†"
SUMMARY_COLUMNS = ["model", "dataset", "metric", "split", "n", "backbone", "mean", "std", "n_seeds"]


# ---------------------------------------------------------------- finding and reading an experiment


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
    runs: pd.DataFrame
    failed: pd.DataFrame


def _config_labels(ok_runs: pd.DataFrame) -> pd.Series:
    """The model name, or "model (abc123)" where one model ran with several configurations on a dataset."""
    present = [c for c in CONFIG_COLUMNS if c in ok_runs.columns]
    if not present or ok_runs.empty:
        return ok_runs["model"].astype(str)
    keys = ok_runs[present].astype(str).agg("|".join, axis=1)
    digest = keys.map(lambda k: hashlib.sha256(k.encode()).hexdigest()[:6])
    configs = digest.groupby([ok_runs["dataset"], ok_runs["model"]]).transform("nunique")
    model = ok_runs["model"].astype(str)
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


# ---------------------------------------------------------------- the numbers


def summarize(values: pd.DataFrame) -> pd.DataFrame:
    """One row per (dataset, model label, column): mean, sample std and count over seeds, the column's
    direction, whether the mean is the column's best (ties all marked) and its rank (1 = best).
    Only columns with a known direction and at least two models are marked and ranked: a model
    alone in a column is neither best nor worst there."""
    keys = ["dataset", "label", "column", "metric", "split", "n", "backbone"]
    summary = (values.groupby(keys, sort=False, dropna=False)["value"]
               .agg(mean="mean", std=lambda v: v.std(ddof=1), n_seeds="count").reset_index())
    summary["model"] = summary["label"]
    summary["direction"] = pd.Series([direction(m) for m in summary["metric"]], index=summary.index, dtype=object)
    summary["best"] = False
    summary["rank"] = np.nan
    for _, index in summary.groupby(["dataset", "column"], sort=False).groups.items():
        group = summary.loc[index]
        way = group["direction"].iloc[0]
        if way not in (HIGHER, LOWER) or group["mean"].notna().sum() < 2:
            continue
        best = group["mean"].max() if way == HIGHER else group["mean"].min()
        summary.loc[index, "best"] = group["mean"] == best
        summary.loc[index, "rank"] = group["mean"].rank(ascending=(way == LOWER), method="average")
    return summary


def mean_ranks(summary: pd.DataFrame) -> pd.Series:
    """(dataset, label) -> the model's rank averaged over the ranked columns of that dataset."""
    return summary.dropna(subset=["rank"]).groupby(["dataset", "label"], sort=False)["rank"].mean()


@dataclass
class Cell:
    mean: float
    std: float
    n_seeds: int
    best: bool


@dataclass
class Table:
    """One dataset's table: models as rows, columns as in the summary, ready for any renderer."""

    dataset: str
    columns: list[str]
    directions: dict[str, str | None]
    qualifiers: dict[str, tuple[str, str, str]]  # column -> (split, n, backbone)
    rows: list["Row"]


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
    ranks = mean_ranks(summary)
    tables = []
    for dataset in summary["dataset"].drop_duplicates():
        part = summary[summary["dataset"] == dataset]
        columns = list(part["column"].drop_duplicates())
        first = part.drop_duplicates("column").set_index("column")
        qualifiers = {c: (first.at[c, "split"], "" if pd.isna(first.at[c, "n"]) else str(first.at[c, "n"]),
                          first.at[c, "backbone"]) for c in columns}
        seeds = results.values[results.values["dataset"] == dataset].groupby("label", sort=False)["seed"].nunique()
        capped = under_trained_counts(results)
        rows = []
        for label in part["label"].drop_duplicates():
            mine = part[part["label"] == label]
            cells = {r.column: Cell(r.mean, r.std, int(r.n_seeds), bool(r.best)) for r in mine.itertuples()}
            rows.append(Row(label, int(seeds[label]), cells, float(ranks.get((dataset, label), np.nan)),
                            int(capped.get((dataset, label), 0))))
        tables.append(Table(dataset, columns, {c: direction(first.at[c, "metric"]) for c in columns}, qualifiers, rows))
    return tables


def under_trained_counts(results: Results) -> pd.Series:
    """(dataset, label) -> number of successful runs stopped by the epoch cap (runs.csv `stopped`)."""
    ok = results.runs[results.runs["status"] == "ok"]
    if "stopped" not in ok:
        return pd.Series(dtype=int)
    labels = results.values.drop_duplicates("run_id").set_index("run_id")["label"]
    capped = ok[ok["stopped"].astype(str) == "cap"]
    return capped.assign(label=capped["run_id"].map(labels)).groupby(["dataset", "label"]).size()


# ---------------------------------------------------------------- rendering


def format_value(cell: Cell, row_seeds: int, pm: str = "±") -> str:
    """Mean ± std with the std to two significant digits and the mean to the same decimals."""
    if cell.mean is None or math.isnan(cell.mean):
        text = "nan"
    elif math.isnan(cell.std) or cell.std == 0 or math.isinf(cell.std):
        text = f"{cell.mean:.4g}" + ("" if math.isnan(cell.std) else f" {pm} {cell.std:g}")
    else:
        decimals = min(8, max(0, 1 - math.floor(math.log10(cell.std))))
        text = f"{cell.mean:.{decimals}f} {pm} {cell.std:.{decimals}f}"
    return text if cell.n_seeds == row_seeds else f"{text} (n={cell.n_seeds})"


def format_rank(rank: float) -> str:
    return "–" if math.isnan(rank) else f"{rank:.2f}"


def _header(table: Table, column: str) -> str:
    arrow = ARROWS[table.directions[column]]
    return f"{column} {arrow}" if arrow else column


def markdown_table(table: Table) -> str:
    header = ["model", "seeds", *(_header(table, c) for c in table.columns), "mean rank"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join([":---", "---:"] + ["---:"] * (len(header) - 2)) + "|"]
    for row in table.rows:
        values = []
        for c in table.columns:
            text = format_value(row.cells[c], row.seeds) + row.mark if c in row.cells else ""
            values.append(f"**{text}**" if c in row.cells and row.cells[c].best else text)
        lines.append("| " + " | ".join([_md_escape(row.label), _seeds_text(row), *values, format_rank(row.rank)]) + " |")
    return "\n".join(lines)


def _seeds_text(row: Row) -> str:
    return f"{row.seeds} ({row.under_trained} under-trained)" if row.under_trained else str(row.seeds)


def under_trained_note(table: Table) -> str:
    rows = [row for row in table.rows if row.under_trained]
    if not rows:
        return ""
    counts = ", ".join(f"{row.label} {row.under_trained} of {row.seeds}" for row in rows)
    return (f"{UNDER_TRAINED_MARK} under-trained: the value includes runs that the epoch cap stopped while the "
            f"validation loss could still improve, not early stopping ({counts}); read them as lower bounds of "
            f"what the model reaches.")


def _md_escape(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


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


def plain_table(table: Table) -> str:
    """Aligned text for the terminal; * marks each column's best."""
    header = ["model", "seeds", *(_header(table, c) for c in table.columns), "mean rank"]
    body = []
    for row in table.rows:
        values = [(format_value(row.cells[c], row.seeds, "+-") + row.mark + ("*" if row.cells[c].best else ""))
                  if c in row.cells else "" for c in table.columns]
        body.append([row.label, _seeds_text(row), *values, format_rank(row.rank)])
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    fmt = lambda r: "  ".join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(r, widths)))
    return "\n".join([fmt(header), "  ".join("-" * w for w in widths), *map(fmt, body)])


LATEX_SPECIALS = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def latex_escape(text: str) -> str:
    return "".join(LATEX_SPECIALS.get(ch, ch) for ch in str(text))


def latex_table(table: Table) -> str:
    arrows = {HIGHER: r" $\uparrow$", LOWER: r" $\downarrow$", None: ""}
    header = ["Model", "Seeds", *(latex_escape(c) + arrows[table.directions[c]] for c in table.columns), "Mean rank"]
    lines = [r"\begin{table}[t]", r"\centering",
             rf"\caption{{{latex_escape(table.dataset)}: mean $\pm$ standard deviation over seeds; "
             r"best of each column in bold. " + latex_escape(qualifier_note(table)) + "}",
             rf"\label{{tab:{re.sub(r'[^A-Za-z0-9-]', '-', table.dataset)}}}",
             r"\resizebox{\textwidth}{!}{%",
             r"\begin{tabular}{l" + "r" * (len(header) - 1) + "}", r"\toprule", " & ".join(header) + r" \\", r"\midrule"]
    for row in table.rows:
        values = []
        for c in table.columns:
            text = (latex_escape(format_value(row.cells[c], row.seeds, "PLUSMINUS")).replace("PLUSMINUS", r"$\pm$")
                    + (r"$^\dagger$" if row.mark else "")) if c in row.cells else ""
            values.append(rf"\textbf{{{text}}}" if c in row.cells and row.cells[c].best else text)
        lines.append(" & ".join([latex_escape(row.label), latex_escape(_seeds_text(row)), *values,
                                 format_rank(row.rank).replace("–", "--")]) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}}", r"\end{table}"]
    return "\n".join(lines)


def tidy_summary(summary: pd.DataFrame) -> pd.DataFrame:
    return summary[SUMMARY_COLUMNS]


# ---------------------------------------------------------------- the report files


@dataclass
class ReportOutcome:
    folder: Path
    files: list[Path]
    terminal: str
    notes: list[str] = field(default_factory=list)


def _failed_section(failed: pd.DataFrame) -> list[str]:
    if failed.empty:
        return []
    lines = ["## Failed runs", "", "These runs recorded no values; they are not in the tables above.", "",
             "| run | model | dataset | seed | reason |", "|:---|:---|:---|---:|:---|"]
    for r in failed.itertuples():
        reason = getattr(r, "reason", "")
        reason = "" if pd.isna(reason) else reason
        lines.append(f"| {_md_escape(r.run_id)} | {_md_escape(r.model)} | {_md_escape(r.dataset)} | {r.seed} | {_md_escape(reason)} |")
    return lines + [""]


def _config_note(results: Results) -> list[str]:
    labels = results.values.drop_duplicates(["dataset", "label"])
    split = labels[labels["label"] != labels["model"]]
    if split.empty:
        return []
    return [f"{model} ran on {dataset} with several configurations; their rows are kept apart "
            f"({', '.join(split[(split['model'] == model) & (split['dataset'] == dataset)]['label'])}; see hparams in runs.csv)"
            for model, dataset in split[["model", "dataset"]].drop_duplicates().itertuples(index=False)]


def write_report(folder: str | Path, data_root=None, figures: bool = True) -> ReportOutcome:
    """Write report.md, summary.csv, tables.tex (and figures/) into the experiment folder."""
    results = load_results(folder)
    folder = results.folder
    summary = summarize(results.values)
    tables = build_tables(results, summary)
    notes = _config_note(results)
    figure_links: dict[str, list[tuple[str, str]]] = {}
    if figures:
        from benchmark.figures import make_figures  # here: matplotlib only when figures are drawn

        figure_links, figure_notes = make_figures(results, data_root)
        notes += figure_notes

    write_atomic(folder / "summary.csv", tidy_summary(summary).to_csv(index=False).encode())
    latex = "% Tables of " + folder.name + ": needs \\usepackage{booktabs} and \\usepackage{graphicx}.\n"
    write_atomic(folder / "tables.tex", (latex + "\n\n".join(latex_table(t) for t in tables) + "\n").encode())
    write_atomic(folder / "report.md", _markdown(results, tables, figure_links, notes).encode())

    terminal = "\n\n".join(f"{t.dataset} (mean +- std over seeds; * best of its column)\n{plain_table(t)}"
                             + (f"\n{under_trained_note(t)}" if under_trained_note(t) else "") for t in tables)
    if len(results.failed):
        n = len(results.failed)
        terminal += f"\n\n{n} failed run{'s' * (n != 1)} not in the table (listed in report.md)."
    files = [folder / name for name in ("report.md", "summary.csv", "tables.tex")]
    files += sorted((folder / "figures").glob("*.png")) if figures else []
    return ReportOutcome(folder, files, terminal, notes)


def _markdown(results: Results, tables: list[Table], figure_links: dict, notes: list[str]) -> str:
    runs = results.runs
    profiles = ", ".join(sorted(runs["profile"].dropna().astype(str).unique())) if "profile" in runs else ""
    lines = [f"# Report: {results.folder.name}", "",
             f"Experiment folder `{results.folder}`; generated {datetime.now(timezone.utc).isoformat(timespec='seconds')}"
             + (f"; profile {profiles}" if profiles else "")
             + f"; {len(runs) - len(results.failed)} successful runs, {len(results.failed)} failed.", "",
             "Each value is the mean ± sample standard deviation (ddof = 1) over the seeds of the successful runs "
             "(\"(n=k)\" where a value has fewer seeds than its row). **Bold** marks the best mean of each column "
             "(↑ higher is better, ↓ lower is better; a column without an arrow, or with one model only, is not ranked). "
             "The mean rank averages a model's rank (1 = best, ties share) over the ranked columns.", ""]
    for table in tables:
        lines += [f"## {table.dataset}", "", markdown_table(table), "", qualifier_note(table), ""]
        lines += [under_trained_note(table), ""] if under_trained_note(table) else []
        for title, path in figure_links.get(table.dataset, []):
            lines += [f"### {title}", "", f"![{title}: {table.dataset}]({path})", ""]
    for title, path in figure_links.get("", []):
        lines += [f"## {title}", "", f"![{title}]({path})", ""]
    lines += _failed_section(results.failed)
    if notes:
        lines += ["## Notes", ""] + [f"- {_md_escape(n)}" for n in notes] + [""]
    return "\n".join(lines)
