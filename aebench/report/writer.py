"""The report of one experiment: writes report.md, summary.csv, comparisons.csv and tables.tex (and
figures/) into its folder, and returns the terminal's tables.

The pieces live in their own modules: aebench/store/values.py finds and reads the experiment (only its
CSV files; history/, samples/ and checkpoints/ add figures when they are there), aebench/report/summary.py
computes the numbers and the significance marks, aebench/report/tables.py builds the tables and their words,
aebench/report/render.py writes them as Markdown, LaTeX or plain text, and aebench/report/figures.py draws.
This module assembles the files.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from aebench.plumbing.atomic import write_atomic
from aebench.plumbing.precision import DEFAULT_PRECISION
from aebench.report.against import against, against_line
from aebench.report.intervals import INTERVAL_COLUMNS, add_intervals, interval_reasons
from aebench.report.render import TERMINAL_LEGEND, latex_table, markdown_table, md_escape, plain_table
from aebench.report.stats import FriedmanResult, cd_groups
from aebench.report.summary import ALPHA, add_marks, friedman_over_columns, significance, summarize
from aebench.report.tables import (
    HEADLINE_METRICS,
    UNDER_TRAINED_MARK,
    Table,
    build_tables,
    headline_table,
    join_names,
    qualifier_note,
    under_trained_note,
    untested_note,
    verdict,
)
from aebench.store.folder import read_csv, rescored
from aebench.store.values import Results, experiment_note, load_results, run_precisions

SUMMARY_COLUMNS = ["model", "dataset", "metric", "split", "n", "backbone", "mean", "std", "n_seeds"]


def tidy_summary(summary: pd.DataFrame) -> pd.DataFrame:
    """summary.csv's columns: the per-image intervals beside the seed std where the experiment has them
    (aebench/report/intervals.py); without a per_image/ folder, exactly protocol v1's columns."""
    intervals = [c for c in INTERVAL_COLUMNS if c in summary]
    at = SUMMARY_COLUMNS.index("std") + 1
    return summary[SUMMARY_COLUMNS[:at] + intervals + SUMMARY_COLUMNS[at:]]


_ABSOLUTE_PATH = re.compile(r"(?<![\w.:/~-])/[^\s,;:()'\"\[\]{}<>|`]+")


def portable(text: str, folder: Path) -> str:
    """`text` without absolute paths of this machine: a path inside the experiment folder becomes relative
    to it, any other absolute path keeps only its last part (".../name")."""
    for prefix in sorted({str(folder.resolve()), str(folder.absolute())}, key=len, reverse=True):
        text = text.replace(prefix + "/", "")
    return _ABSOLUTE_PATH.sub(lambda m: ".../" + m.group().rstrip("/").rsplit("/", 1)[-1], text)


# ---------------------------------------------------------------- the report files


@dataclass
class ReportOutcome:
    folder: Path
    files: list[Path]
    terminal: str
    notes: list[str] = field(default_factory=list)


@dataclass
class Drawn:
    """The figures drawn: {dataset: [(title, relative path)]} ("" = spanning datasets) and the CD diagram's."""

    links: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    cd_link: str = ""


def _paragraph(text: str) -> list[str]:
    return [text, ""] if text else []


def _failed_section(failed: pd.DataFrame, folder: Path) -> list[str]:
    if failed.empty:
        return []
    lines = ["## Failed runs", "", "These runs recorded no values; they are not in the tables above.", "",
             "| run | model | dataset | seed | reason |", "|:---|:---|:---|---:|:---|"]
    for r in failed.itertuples():
        reason = getattr(r, "reason", "")
        reason = "" if pd.isna(reason) else portable(str(reason), folder)
        lines.append(f"| {md_escape(r.run_id)} | {md_escape(r.model)} | {md_escape(r.dataset)} | {r.seed} | {md_escape(reason)} |")
    return lines + [""]


def _config_note(results: Results) -> list[str]:
    labels = results.values.drop_duplicates(["dataset", "label"])
    split = labels[labels["label"] != labels["model"]]
    if split.empty:
        return []
    return [f"{model} ran on {dataset} with several configurations; their rows are kept apart "
            f"({', '.join(split[(split['model'] == model) & (split['dataset'] == dataset)]['label'])}; see hparams in runs.csv)"
            for model, dataset in split[["model", "dataset"]].drop_duplicates().itertuples(index=False)]


def _draw(results: Results, friedman: FriedmanResult | str, data_root) -> tuple[Drawn, list[str]]:
    from aebench.report.figures import cd_figure, make_figures  # here: matplotlib only when figures are drawn

    links, notes = make_figures(results, data_root)
    links.setdefault("", []).extend(_tradeoff_links(results.folder))
    cd_link = cd_figure(results.folder, friedman) if isinstance(friedman, FriedmanResult) else ""
    return Drawn(links, cd_link), notes


def _tradeoff_links(folder: Path) -> list[tuple[str, str]]:
    """A tuning folder's trade-off figures (aebench.report.tuning_figures), drawn again from its tuning.csv."""
    from aebench.report.tuning_figures import tradeoff_figures  # matplotlib, as above

    if not (folder / "tuning.csv").is_file():
        return []
    table = read_csv(folder / "tuning.csv", ["model", "selected", "criterion"])
    if table.empty:
        return []
    paths = tradeoff_figures(table, folder, str(table["criterion"].iloc[0]))
    return [(f"Tuning trade-off of {path.stem.removeprefix('tradeoff-')}: every trial's validation reconstruction "
             "against its FID, the selected trial marked", path.relative_to(folder).as_posix()) for path in paths]


def write_report(folder: str | Path, data_root=None, figures: bool = True, reference: str | Path | None = None) -> ReportOutcome:
    """Write report.md, summary.csv, comparisons.csv, tables.tex (and figures/) into the experiment folder;
    with `reference`, its models' runs beside this experiment's (aebench/report/against.py)."""
    results = load_results(folder)
    if reference is not None:
        results = against(results, load_results(reference))
    folder = results.folder
    comparisons, marks = significance(results.values)
    summary = add_intervals(add_marks(summarize(results.values), marks), results)
    tables = build_tables(results, summary)
    friedman = friedman_over_columns(summary)
    drawn, figure_notes = _draw(results, friedman, data_root) if figures else (Drawn(), [])
    notes = _config_note(results) + figure_notes  # the terminal's: they may name this machine's paths

    write_atomic(folder / "summary.csv", tidy_summary(summary).to_csv(index=False).encode())
    write_atomic(folder / "comparisons.csv", comparisons.to_csv(index=False).encode())
    latex = "% Tables of " + folder.name + ": needs \\usepackage{booktabs} and \\usepackage{graphicx}.\n"
    write_atomic(folder / "tables.tex", (latex + "\n\n".join(latex_table(t) for t in tables) + "\n").encode())
    portable_notes = [portable(note, folder) for note in notes]
    markdown = _markdown(results, tables, friedman, drawn, portable_notes, interval_reasons(summary))
    write_atomic(folder / "report.md", markdown.encode())

    terminal = "\n\n".join(f"{t.dataset} ({TERMINAL_LEGEND})\n{plain_table(t)}"
                           + (f"\n{under_trained_note(t)}" if under_trained_note(t) else "") for t in tables)
    if len(results.failed):
        n = len(results.failed)
        terminal += f"\n\n{n} failed run{'s' * (n != 1)} not in the table (listed in report.md)."
    files = [folder / name for name in ("report.md", "summary.csv", "comparisons.csv", "tables.tex")]
    files += sorted((folder / "figures").glob("*.png")) if figures else []
    return ReportOutcome(folder, files, terminal, notes)


LEGEND = ("Each value is the mean ± sample standard deviation (ddof = 1) over the seeds of the successful runs "
          "(\"(n=k)\" where a value has fewer seeds than its row); ↑ higher is better, ↓ lower is better. "
          "**Bold**: best, significantly better than every other model (paired t-test over shared seeds, Holm-corrected, "
          f"α = {ALPHA:g}). ≈: the best mean and every model not significantly worse than it (not a claim that they are equal: with few seeds a wide gap can be untestable). "
          "(untested): the best mean of a column where no pair of models shares 2 seeds, so no test was possible; "
          "it is not a significant result. A column without an arrow, or with one model only, is neither marked nor "
          f"ranked. {UNDER_TRAINED_MARK}: under-trained (see the note under the table). The mean rank averages a model's "
          "rank by mean (1 = best, ties share) over the ranked columns of the dataset.")

METHOD = ("Within each dataset and metric column, every pair of models is compared by a paired t-test over the "
          "seeds both ran (runs with one seed share data order and evaluation subsamples; pairing removes that), "
          "and the p-values of all pairs of the column are corrected together by Holm's method. Not Wilcoxon: with "
          "fewer than 6 seeds the exact two-sided Wilcoxon signed-rank test cannot reach p < 0.05 (its smallest p "
          "is 2/2^n: 0.25, 0.125, 0.0625 for 3, 4, 5 seeds), so it could never call a difference significant; the "
          "t-test assumes roughly normal per-seed differences, plausible for metrics averaged over thousands of "
          "test images. A pair with fewer than 2 shared seeds is not tested. Every pair, with its p-values and "
          "the better model, is in comparisons.csv.")


# What a reader must know about a profile's numbers before reading them (by the profile's name in runs.csv).
PROFILE_NOTES = {"smoke": "The smoke profile is a smoke check (8x8 digits, small MLPs, seconds per run): it keeps CI "
                          "honest and lets a user try the suite; it is not a verdict on the models."}


def _duration(seconds: float) -> str:
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{seconds / 60:.1f} min"


def busy_seconds(starts: pd.Series, ends: pd.Series) -> float:
    """Length of the union of the [start, end] intervals: the time during which at least one run was in
    progress. Parallel jobs shorten it; pauses between sessions of a resumed study do not count."""
    total, reach = 0.0, None
    for start, end in sorted(zip(starts, ends)):
        if reach is None or start > reach:
            total, reach = total + (end - start).total_seconds(), end
        elif end > reach:
            total, reach = total + (end - reach).total_seconds(), end
    return total


def cost_line(runs: pd.DataFrame) -> str:
    """What the runs cost: their summed training and evaluation time, and the wall time during which at
    least one of them was in progress (a run starts at its end less its own seconds)."""
    if runs.empty or not {"train_seconds", "finished_at"} <= set(runs.columns):
        return ""
    seconds = runs["train_seconds"].fillna(0) + runs.get("eval_seconds", pd.Series(0.0, index=runs.index)).fillna(0)
    ends = pd.to_datetime(runs["finished_at"], utc=True, errors="coerce")
    if ends.isna().any():
        return ""
    wall = busy_seconds(ends - pd.to_timedelta(seconds, unit="s"), ends)
    return (f"Cost: {_duration(seconds.sum())} of training and evaluation summed over the {len(runs)} runs; wall "
            f"time {_duration(wall)} during which at least one run was in progress (pauses between sessions "
            f"of a resumed study are not counted).")


def mixed_precision_line(runs: pd.DataFrame) -> str:
    """Says that the runs trained in more than one precision, and how the tables keep them apart."""
    counts = run_precisions(runs).value_counts()
    if len(counts) < 2:
        return ""
    spelled = " and ".join(f"{n} in {p}" for p, n in sorted(counts.items()))
    return (f"**Mixed precisions.** Of the {len(runs)} runs, {spelled}. A model trained in another precision than "
            f"{DEFAULT_PRECISION} is a row of its own (`model@bf16`), never averaged with {DEFAULT_PRECISION} runs; "
            "compare models within one precision: a difference between rows of different precisions mixes a "
            "difference of models with one of arithmetic (docs/evaluation.md, \"Training precision\").")


def rescored_line(runs: pd.DataFrame) -> str:
    """Says which runs trained nothing here (run --weights-from) and so cost evaluation only."""
    marked = rescored(runs)
    if not marked.any():
        return ""
    return (f"Rescored: {int(marked.sum())} of the {len(runs)} runs trained nothing here; each scored the trained "
            "weights of the run named in runs.csv's `weights_from` column (with that run's training fields), so "
            "their cost above is evaluation only.")


def _intro(results: Results) -> list[str]:
    runs = results.runs
    profiles = ", ".join(sorted(runs["profile"].dropna().astype(str).unique())) if "profile" in runs else ""
    name = results.folder.resolve().name
    return [f"# Report: {name}", "",
            f"Experiment `{name}`; generated {datetime.now(timezone.utc).isoformat(timespec='seconds')}"
            + (f"; profile {profiles}" if profiles else "")
            + f"; training precision {', '.join(sorted(run_precisions(runs).unique())) or DEFAULT_PRECISION}"
            + f"; {len(runs) - len(results.failed)} successful runs, {len(results.failed)} failed.", "",
            *_paragraph(against_line(results)),
            *_paragraph(mixed_precision_line(runs)),
            *_paragraph(cost_line(runs)),
            *_paragraph(rescored_line(runs)),
            *_paragraph(f"**Note.** {note}" if (note := experiment_note(results.folder)) else ""),
            *[line for p in profiles.split(", ") if p in PROFILE_NOTES for line in _paragraph(PROFILE_NOTES[p])],
            LEGEND, ""]


def _headline_section(table: Table) -> list[str]:
    head = headline_table(table)
    lines = [f"### {table.dataset}", ""]
    if not head.columns:
        return lines + [f"No headline metric ({', '.join(HEADLINE_METRICS)}) here; see the appendix.", ""]
    lines += [markdown_table(head), ""] + _paragraph(under_trained_note(table))
    lines += ["Verdict:", ""] + [f"- {md_escape(verdict(head, c))}" for c in head.columns] + [""]
    return lines + _paragraph(untested_note(table))


def _friedman_section(friedman: FriedmanResult | str, cd_link: str) -> list[str]:
    lines = ["## Across datasets and metrics: Friedman and Nemenyi", ""]
    if isinstance(friedman, str):
        return lines + [f"Skipped: {friedman}.", ""]
    k = len(friedman.mean_ranks)
    p = "n/a" if math.isnan(friedman.p_value) else f"{friedman.p_value:.3g}"
    ranks = ", ".join(f"{model} {rank:.2f}" for model, rank in friedman.mean_ranks.items())
    groups = cd_groups(friedman.mean_ranks, friedman.critical_difference)
    lines += [f"Friedman test on the models' ranks: statistic {friedman.statistic:.3g}, p = {p}, over N = "
              f"{friedman.n_blocks} blocks ((dataset, metric) columns in which every model has a value) and k = {k} "
              f"models. Nemenyi critical difference CD = {friedman.critical_difference:.2f} (α = {friedman.alpha:g}): "
              f"models whose mean ranks differ by less than CD are not significantly different. "
              f"Mean ranks (1 = best): {ranks}.", ""]
    lines += _paragraph("Within CD of each other: " + "; ".join(join_names(g) for g in groups) + "." if groups else
                        "Every two models differ by at least CD in mean rank.")
    lines += ["The blocks are correlated (the metrics of one dataset are measured on the same runs), not independent "
              "as the test assumes, so read the Friedman p as descriptive.", ""]
    return lines + ([f"![Critical-difference diagram]({cd_link})", ""] if cd_link else
                    ["The critical-difference diagram was not drawn (figures off).", ""])


def _figures_section(tables: list[Table], links: dict) -> list[str]:
    lines = []
    for table in tables:
        for title, path in links.get(table.dataset, []):
            lines += [f"### {title}: {table.dataset}", "", f"![{title}: {table.dataset}]({path})", ""]
    for title, path in links.get("", []):
        lines += [f"### {title}", "", f"![{title}]({path})", ""]
    return ["## Figures", ""] + lines if lines else []


def _appendix(tables: list[Table]) -> list[str]:
    lines = ["## Appendix: every metric", "", "Every metric column, marked as the headline tables are.", ""]
    for table in tables:
        lines += [f"### {table.dataset}", "", markdown_table(table), "", qualifier_note(table), ""]
        lines += _paragraph(under_trained_note(table))
    return lines


def _markdown(results: Results, tables: list[Table], friedman: FriedmanResult | str, drawn: Drawn,
              notes: list[str], intervals: str = "") -> str:
    lines = _intro(results) + ["## Headline", ""]
    for table in tables:
        lines += _headline_section(table)
    lines += ["## How significance is decided", "", METHOD, ""] + _paragraph(intervals)
    lines += _friedman_section(friedman, drawn.cd_link)
    lines += _figures_section(tables, drawn.links) + _appendix(tables)
    lines += _failed_section(results.failed, results.folder)
    if notes:
        lines += ["## Notes", ""] + [f"- {md_escape(n)}" for n in notes] + [""]
    return "\n".join(lines)
