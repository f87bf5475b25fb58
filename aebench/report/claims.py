"""The claims table: does each claim hold in our results? The claims and their lines are declared in a
claims file (default studies/claims.toml, read by aebench/report/claims_file.py, whose docstring gives its
keys and the declaration rule); this module knows no claim of its own.

Input: experiment folders as `python cli.py report FOLDER` leaves them (summary.csv and comparisons.csv;
where they are missing they are computed in memory from metrics.csv and runs.csv by the report's own
code, and nothing is written into the folder), and optionally one ablation folder: runs of the model
`ours` or its named variants (swae-xz, swae-zrec), whose hparams (runs.csv, JSON) differ in `objective`.
Every mean, std and test comes from the report layer (aebench/report/summary.py: summarize, significance);
this module only chooses which of them each line reads.

One table line per declared line, dataset and metric column it finds:
- a model line sets `ours` against the best other model of that column (best mean by the metric's
  direction, aebench/metrics/directions.py), or against the model the line names. Its test is that
  pair's row of comparisons.csv: paired t-test over the seeds both ran. Only that pair is tested, not
  every baseline;
- an ablation line sets one objective against another on per-seed values, by the same test: the
  report's significance() over the ablation's values with the objectives in the place of the models,
  since comparisons.csv compares models, not objectives.
Two p-values are shown: "p (column Holm)", today's, Holm over all pairs of models (or objectives) of
the (dataset, column), as comparisons.csv; and "p (table Holm)", Holm over every test of this table as
one family (each tested line's paired t-test p, exploratory lines included). The table-wide one decides:
it is the stricter reading, since the claims are read together. A line's outcome is "<ours> better
(significant)" (a win: table Holm p <= alpha, in the claimed direction), "<ours> worse (significant)"
(a loss), "within noise" (table Holm p > alpha) or "not tested" (metric or model missing, fewer than 2
shared seeds, or a difference without variance).

For a per-image metric (recon_sse, denoise_sse_s*, knn{k}_acc) the line also shows a 95% interval of
the difference ours - other that resamples the test images as well as the seeds (aebench/report/intervals.py,
from the folder's per_image/), or why there is none.

A line declared after its data existed is exploratory (claims_file's rule): it is shown and marked,
and does not count. The verdict of a claim, over its lines that count:
  holds                                every one a win;
  does not hold                        none a win (suffixed "(nothing tested)" when none was tested);
  W wins, L losses, T within noise     otherwise (", U not tested" added where some were not);
  no verdict (every line exploratory)  when no line counts.
"""
from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from aebench.errors import UserError
from aebench.metrics.directions import HIGHER, LOWER, direction
from aebench.plumbing.atomic import write_atomic
from aebench.report.claims_file import (
    DEFAULT_PATH,
    DENOISE,
    ClaimsFile,
    ClaimSpec,
    LineSpec,
    exploratory_reason,
    load_claims_file,
)
from aebench.report.intervals import ROW_COLUMNS, Interval, difference_interval
from aebench.report.render import format_value, md_escape
from aebench.report.stats import holm
from aebench.report.summary import ALPHA, COMPARISON_COLUMNS, HIGHER_IS_BETTER, significance, summarize
from aebench.report.tables import Cell
from aebench.report.writer import SUMMARY_COLUMNS
from aebench.store.folder import read_csv, rescored
from aebench.store.per_image import PerImageStore
from aebench.store.values import column_labels, load_results

DENOISE_PREFIX = "denoise_sse_s"
DENOISE_SIGMA = 0.3  # the noise level read when measured; else the nearest one
CONTEXT_METRICS = ("nn_train_ratio", "nn_train_ratio_gmm", "copying_ct", "copying_ct_gmm", "active_units")
COST_COLUMNS = ["train_seconds", "epochs_run"]
MISSING = "—"
HOLDS, DOES_NOT_HOLD = "holds", "does not hold"
NO_VERDICT = "no verdict (every line exploratory)"
# A line's result; not the report's marks (summary.UNTESTED is a mark of the best mean).
WIN, LOSS, NOISE, NO_TEST = "win", "loss", "noise", "no test"


@dataclass
class Line:
    claim: str
    spec: LineSpec
    metric: str  # the column as the report names it (backbone included), or the claimed metric when missing
    dataset: str
    ours: str  # the cells: mean ± std of each member
    theirs: str
    name: str  # who "ours" is in the outcome: the model, or the claimed objective
    higher_is_better: bool | None = None
    p_value: float = math.nan  # the pair's paired t-test
    p_column: float = math.nan  # Holm over the pairs of its (dataset, column)
    p_table: float = math.nan  # Holm over every test of the table (set by table_holm)
    diff: float = math.nan  # mean over the shared seeds of ours - theirs
    untested: str = ""  # why the line was not tested; "" when it was
    interval: Interval = field(default_factory=Interval)
    exploratory: str = ""  # why the line does not count; "" when it does

    @property
    def result(self) -> str:
        if self.untested or math.isnan(self.p_table):
            return NO_TEST
        if self.p_table > ALPHA or self.higher_is_better is None or self.diff == 0:
            return NOISE
        return WIN if (self.diff > 0) == self.higher_is_better else LOSS

    @property
    def outcome(self) -> str:
        text = {NO_TEST: f"not tested ({self.untested or 'no test possible'})", NOISE: "within noise",
                WIN: f"{self.name} better (significant)", LOSS: f"{self.name} worse (significant)"}[self.result]
        return text + (f"; exploratory, not counted: {self.exploratory}" if self.exploratory else "")


# ---------------------------------------------------------------- reading folders


def display_name(folder: str | Path) -> str:
    """The folder relative to the current directory, or its name: the output never holds absolute paths."""
    resolved = Path(folder).resolve()
    try:
        return str(resolved.relative_to(Path.cwd().resolve())) or "."
    except ValueError:
        return resolved.name


@dataclass
class Source:
    """One folder with the report's numbers of it: an experiment, whose members are its model labels, or
    the ablation, whose members are ours' objectives (in the place of `label` and `model`)."""

    name: str
    summary: pd.DataFrame  # summarize()'s rows, or summary.csv's; `column` as comparisons.csv names it
    comparisons: pd.DataFrame  # significance()'s pairs, or comparisons.csv
    values: pd.DataFrame | None  # load_results()'s per-run values (intervals, cost); None without metrics.csv
    runs: pd.DataFrame | None  # runs.csv (finish times, cost); None without it
    per_image: PerImageStore
    seeds: dict[str, int]  # dataset -> its number of seeds, in the folder's order

    @property
    def datasets(self) -> list[str]:
        return list(self.seeds)

    def rows(self, dataset: str, column: str | None = None) -> pd.DataFrame:
        here = self.summary["dataset"] == dataset
        return self.summary[here if column is None else here & (self.summary["column"] == column)]


def _folder(folder: str | Path) -> Path:
    path = Path(folder)
    if not path.is_dir():
        raise UserError(f"{folder}: no such folder")  # as typed: the user's terminal, not the table
    return path


def _has(folder: Path, *names: str) -> bool:
    return all((folder / name).is_file() for name in names)


def _read_summary(path: Path) -> pd.DataFrame:
    """summary.csv typed as summarize() types it (a CSV round trip leaves "" as NaN and n as float), with
    each row's column label so that it matches comparisons.csv."""
    summary = read_csv(path / "summary.csv", SUMMARY_COLUMNS)
    qualifiers = {q: summary[q].astype(object).fillna("").astype(str) for q in ("split", "backbone")}
    summary = summary.assign(**qualifiers, n=pd.to_numeric(summary["n"], errors="coerce").astype("Int64"),
                             model=summary["model"].astype(str))
    return summary.assign(column=column_labels(summary))


def load_experiment(folder: str | Path) -> Source:
    path = _folder(folder)
    results = load_results(path) if _has(path, "metrics.csv", "runs.csv") else None
    if _has(path, "summary.csv", "comparisons.csv"):  # as the report wrote them
        summary, comparisons = _read_summary(path), read_csv(path / "comparisons.csv", COMPARISON_COLUMNS)
    elif results is not None:  # as the report computes them; nothing is written into the folder
        summary, comparisons = summarize(results.values), significance(results.values)[0]
    else:
        raise UserError(f"{folder}: no summary.csv and comparisons.csv, and no metrics.csv and runs.csv to compute "
                        f"them from; is it an experiment folder (as `python cli.py run` writes it)?")
    if summary.empty:
        raise UserError(f"{folder}: summary.csv has no rows")
    runs = results.runs if results is not None else (
        read_csv(path / "runs.csv", ["run_id", "dataset", "status"]) if _has(path, "runs.csv") else None)
    seeds = {dataset: int(n) for dataset, n in summary.groupby("dataset", sort=False)["n_seeds"].max().items()}
    return Source(display_name(path), summary, comparisons, results.values if results is not None else None, runs,
                  PerImageStore(path), seeds)


def _objective(hparams) -> str | None:
    """The `objective` in a runs.csv hparams cell (JSON); None when it has none or is not JSON."""
    try:
        found = json.loads(hparams).get("objective")
    except (TypeError, ValueError, AttributeError):
        return None
    return str(found) if found is not None else None


def load_ablation(folder: str | Path, ours: str) -> Source:
    """The runs of ours and its named variants (swae-xz, swae-zrec: aebench/catalog/models.py), each
    labelled by the objective of its hparams, so that the report's code compares objectives as it does models."""
    path = _folder(folder)
    if not _has(path, "runs.csv", "metrics.csv"):
        raise UserError(f"{folder}: an ablation folder needs runs.csv and metrics.csv (per-seed values), and one "
                        f"is missing")
    results = load_results(path)
    if "hparams" not in results.runs:
        raise UserError(f"{folder}: runs.csv has no hparams column, so no objective of {ours} can be read")
    objective_of = results.runs.set_index("run_id")["hparams"].map(_objective)
    values = results.values[results.values["model"].astype(str).str.fullmatch(rf"{ours}(-[\w-]+)?")]
    values = values.assign(label=values["run_id"].map(objective_of)).dropna(subset=["label"])
    twice = values[values.duplicated(["dataset", "column", "label", "seed"], keep=False)]
    if not twice.empty:
        row = twice.iloc[0]
        raise UserError(f"{folder}: objective {row['label']} has several runs of {ours} with seed {row['seed']} "
                        f"on {row['dataset']}; an ablation must vary the objective only")
    objectives = list(values["label"].drop_duplicates())
    if len(objectives) < 2:
        found = f"only objective {objectives[0]}" if objectives else f"no {ours} run with an objective in its hparams"
        raise UserError(f"{folder}: not an ablation of {ours} ({found}); it needs runs of {ours} (or its named "
                        f"variants) with at least two objectives")
    # An objective's cell averages its finite values (the test ignores the others): a non-finite value is
    # blanked, not dropped, so that an objective without any finite value still shows as run.
    finite = values.assign(value=values["value"].where(np.isfinite(values["value"].to_numpy(dtype=float))))
    seeds = {dataset: int(n) for dataset, n in values.groupby("dataset", sort=False)["seed"].nunique().items()}
    return Source(display_name(path), summarize(finite), significance(finite)[0], values, results.runs,
                  PerImageStore(path), seeds)


# ---------------------------------------------------------------- which column, which member


def _sigma(metric: str) -> float:
    try:
        return float(metric.removeprefix(DENOISE_PREFIX))
    except ValueError:
        return math.nan


def _denoise_metric(metrics: Iterable[str]) -> str | None:
    """denoise_sse_s0.3 when measured, else the measured noise level nearest to it (the larger on a tie)."""
    found = [m for m in set(metrics) if m.startswith(DENOISE_PREFIX) and not math.isnan(_sigma(m))]
    return min(found, key=lambda m: (abs(_sigma(m) - DENOISE_SIGMA), -_sigma(m)), default=None)


def _metric_columns(summary: pd.DataFrame, metric: str, backbone: str = "") -> list[str]:
    """The report's columns of one metric in `summary` (several when several backbones measured it), only
    those whose backbone starts with `backbone` when given."""
    if metric == DENOISE:
        metric = _denoise_metric(summary["metric"])
    rows = summary[summary["metric"] == metric] if metric else summary.iloc[:0]
    if backbone:
        rows = rows[rows["backbone"].astype(str).str.startswith(backbone)]
    return list(rows["column"].drop_duplicates())


def _is(label: str, model: str) -> bool:
    return label == model or label.startswith(model + " (")  # "swae (abc123)": one of several configurations


def _label(labels: Iterable[str], model: str, name: str, dataset: str, hint: str = "") -> str | None:
    found = [label for label in dict.fromkeys(labels) if _is(label, model)]
    if len(found) > 1:
        raise UserError(f"{name}: {dataset} has {len(found)} configurations of {model} ({', '.join(found)}); a "
                        f"claims experiment needs one{hint}")
    return found[0] if found else None


def _best(part: pd.DataFrame, way: str | None) -> pd.Series | None:
    """The row of best mean by direction among `part`'s finite means; None when there is none."""
    finite = part[np.isfinite(part["mean"].to_numpy(dtype=float))]
    if finite.empty or way not in (HIGHER, LOWER):
        return None
    return finite.loc[finite["mean"].idxmax() if way == HIGHER else finite["mean"].idxmin()]


def _cell_text(row: pd.Series, seeds: int) -> str:
    """A summary row as the report writes its cell: mean ± std, "(n=k)" when it has fewer seeds."""
    return format_value(Cell(float(row["mean"]), float(row["std"]), int(row["n_seeds"])), seeds)


def _member_rows(values: pd.DataFrame, member: str) -> pd.DataFrame:
    """One member's finite rows (run_id, seed, metric, n, value) of one (dataset, column) frame of values."""
    rows = values[values["label"] == member]
    return rows[np.isfinite(rows["value"].to_numpy(dtype=float))][ROW_COLUMNS]


def _compare(line: Line, source: Source, dataset: str, column: str, ours: str, theirs: str) -> None:
    """The line's test, from the pair's row of the source's comparisons oriented so that diff is ours -
    theirs, and the interval of that difference."""
    here = source.comparisons[(source.comparisons["dataset"] == dataset) & (source.comparisons["column"] == column)]
    a, b = here["model_a"], here["model_b"]
    pair = here[((a == ours) & (b == theirs)) | ((a == theirs) & (b == ours))]
    if pair.empty:
        line.untested = "no comparison"
    else:
        pair = pair.iloc[0]
        line.p_value, line.p_column = float(pair["p_value"]), float(pair["p_holm"])
        line.diff = float(pair["mean_diff"]) * (1 if pair["model_a"] == ours else -1)
        if math.isnan(line.p_value):  # a CSV round trip leaves an empty note as NaN
            note = pair["note"] if isinstance(pair["note"], str) and pair["note"] else "no test possible"
            line.untested = note.removesuffix(": not tested")
    if source.values is None:
        line.interval = Interval(note="no metrics.csv, so no per-run values")
        return
    values = source.values[(source.values["dataset"] == dataset) & (source.values["column"] == column)]
    line.interval = difference_interval(source.per_image, _member_rows(values, ours), _member_rows(values, theirs))


# ---------------------------------------------------------------- lines of the claims table


def _dataset_name(source_name: str, dataset: str, several: bool) -> str:
    return f"{dataset} ({source_name})" if several else dataset


def _model_line(claim: ClaimSpec, spec: LineSpec, ours_model: str, source: Source, dataset: str,
                column: str, shown_dataset: str) -> Line:
    """`ours` against the best other model (or the named one) in one (dataset, column)."""
    part, seeds = source.rows(dataset, column), source.seeds[dataset]
    way = direction(part["metric"].iloc[0])
    ours = _label(part["model"], ours_model, source.name, dataset, ", and objectives go to --ablation")
    others = part[~part["model"].map(lambda label: _is(label, ours_model))]
    if spec.against:
        named = _label(others["model"], spec.against, source.name, dataset)
        best = others[others["model"] == named].iloc[0] if named else None
    else:
        best = _best(others, way)
    line = Line(claim.text, spec, column, shown_dataset, MISSING, MISSING, ours_model, HIGHER_IS_BETTER.get(way),
                exploratory=exploratory_reason(source.runs, dataset, spec))
    if best is not None:
        line.theirs = f"{md_escape(best['model'])}: {_cell_text(best, seeds)}"
    if ours is None or best is None:
        line.untested = (f"no {ours_model} value" if ours is None else
                         f"no {spec.against} value" if spec.against else "no other model's value")
        return line
    line.ours = _cell_text(part[part["model"] == ours].iloc[0], seeds)
    _compare(line, source, dataset, column, ours, best["model"])
    return line


def _missing_line(claim: ClaimSpec, spec: LineSpec, metric: str, dataset: str, why: str, exploratory: str = "") -> Line:
    return Line(claim.text, spec, metric, dataset, MISSING, MISSING, "", untested=why, exploratory=exploratory)


def model_lines(claim: ClaimSpec, spec: LineSpec, ours: str, experiments: list[Source]) -> list[Line]:
    """The lines of one declared model line: every experiment, dataset and column it finds. A metric an
    experiment did not measure on a dataset is a "not tested" line only when no other experiment
    measured it there: a rescoring folder (run --scope generation) adds the Inception rows of a dataset
    without making the rest untested."""
    several = len(experiments) > 1
    columns = {(e.name, d): _metric_columns(e.rows(d), spec.row_metric, spec.backbone)
               for e in experiments for d in e.datasets if not spec.dataset or d == spec.dataset}
    measured = {d for (_, d), found in columns.items() if found}
    lines = []
    for experiment in experiments:
        for dataset in experiment.datasets:
            if (experiment.name, dataset) not in columns:
                continue
            shown = _dataset_name(experiment.name, dataset, several)
            found = columns[(experiment.name, dataset)]
            if found:
                lines += [_model_line(claim, spec, ours, experiment, dataset, c, shown) for c in found]
            elif dataset not in measured:
                lines.append(_missing_line(claim, spec, spec.row_metric, shown, "metric not measured",
                                           exploratory_reason(experiment.runs, dataset, spec)))
    if spec.dataset and not columns:
        lines.append(_missing_line(claim, spec, spec.row_metric, spec.dataset, "dataset not in any folder"))
    return lines


def _ablation_line(claim: ClaimSpec, spec: LineSpec, ablation: Source, dataset: str, column: str) -> Line:
    """Objective `ours` against `other` per seed in one (dataset, column): paired t-test, Holm over all
    pairs of objectives of the column (p column), as comparisons.csv does for models."""
    part, seeds = ablation.rows(dataset, column).set_index("model"), ablation.seeds[dataset]
    ours, other = spec.objectives
    cells = [f"{o}: {_cell_text(part.loc[o], seeds) if o in part.index and part.at[o, 'n_seeds'] else MISSING}"
             for o in (ours, other)]
    line = Line(claim.text, spec, column, f"{dataset} (ablation {ablation.name})", *cells, ours,
                HIGHER_IS_BETTER.get(direction(part["metric"].iloc[0])),
                exploratory=exploratory_reason(ablation.runs, dataset, spec))
    not_run = [o for o in (ours, other) if o not in part.index]
    if not_run:
        line.untested = f"objective {not_run[0]} not run"
        return line
    _compare(line, ablation, dataset, column, ours, other)
    return line


def ablation_lines(claim: ClaimSpec, spec: LineSpec, ablation: Source | None) -> list[Line]:
    ours, other = spec.objectives
    label = f"{spec.row_metric} ({ours} vs {other})"
    if ablation is None:
        return [_missing_line(claim, spec, label, MISSING, "no --ablation folder")]
    lines = []
    for dataset in [d for d in ablation.datasets if not spec.dataset or d == spec.dataset]:
        columns = _metric_columns(ablation.rows(dataset), spec.row_metric, spec.backbone)
        lines += ([_ablation_line(claim, spec, ablation, dataset, c) for c in columns]
                  or [_missing_line(claim, spec, label, f"{dataset} (ablation {ablation.name})", "metric not measured",
                                    exploratory_reason(ablation.runs, dataset, spec))])
    return lines or [_missing_line(claim, spec, label, spec.dataset, "dataset not in the ablation folder")]


# ---------------------------------------------------------------- one family, the claim's verdict


def table_holm(lines: list[Line]) -> None:
    """Every tested line's p corrected by Holm as one family (the whole table), into p_table."""
    tested = [line for line in lines if not math.isnan(line.p_value)]
    for line, adjusted in zip(tested, holm(np.array([line.p_value for line in tested]))):
        line.p_table = float(adjusted)


def _counted(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def claim_verdict(lines: list[Line]) -> str:
    """The verdict of one claim over its lines that count (module docstring); not tables.verdict, which
    describes one column's marks."""
    counted = [line.result for line in lines if not line.exploratory]
    if not counted:
        return NO_VERDICT
    wins, losses, noise, untested = (counted.count(r) for r in (WIN, LOSS, NOISE, NO_TEST))
    if wins == len(counted):
        return HOLDS
    if wins == 0:
        return DOES_NOT_HOLD + (" (nothing tested)" if untested == len(counted) else "")
    text = f"{_counted(wins, 'win', 'wins')}, {_counted(losses, 'loss', 'losses')}, {noise} within noise"
    return text + (f", {untested} not tested" if untested else "")


def claim_lines(claims: ClaimsFile, experiments: list[Source],
                ablation: Source | None) -> list[tuple[ClaimSpec, list[Line]]]:
    """Every claim with its lines, in the order of the claims file, p_table set over all of them."""
    found = []
    for claim in claims.claims:
        lines = []
        for spec in claim.lines:
            lines += (ablation_lines(claim, spec, ablation) if spec.objectives
                      else model_lines(claim, spec, claims.ours, experiments))
        found.append((claim, lines))
    table_holm([line for _, lines in found for line in lines])
    return found


# ---------------------------------------------------------------- Markdown


def _row(cells: Iterable[str]) -> str:
    return "| " + " | ".join(cells) + " |"  # as render.markdown_table writes its rows (inline there)


def _number(value: float | None, spec: str) -> str:
    return MISSING if pd.isna(value) else f"{value:{spec}}"


def _claims_table(claims: list[tuple[ClaimSpec, list[Line]]], ours: str) -> list[str]:
    lines = [_row(["claim", "metric", "sampler", "dataset", "declared", ours, "other", "difference, 95% interval",
                   "p (column Holm)", "p (table Holm)", "outcome", "verdict"]),
             "|:---|:---|:---|:---|:---|---:|---:|---:|---:|---:|:---|:---|"]
    for claim, claim_rows in claims:
        for i, line in enumerate(claim_rows):
            first = i == 0  # claim and verdict once, on the claim's first line
            lines.append(_row([md_escape(claim.text) if first else "", md_escape(line.metric), line.spec.sampler,
                               md_escape(line.dataset), line.spec.declared_as, line.ours, line.theirs,
                               md_escape(line.interval.text()), _number(line.p_column, ".3g"),
                               _number(line.p_table, ".3g"), md_escape(line.outcome),
                               f"**{claim_verdict(claim_rows)}**" if first else ""]))
    return lines


def _seed_text(source: Source) -> str:
    return ", ".join(f"{dataset}, {n} seeds" for dataset, n in source.seeds.items())


def _preamble(claims: ClaimsFile, experiments: list[Source], ablation: Source | None) -> list[str]:
    """What the table read and how to read it: the paragraphs above it."""
    folders = "; ".join(f"`{e.name}` ({_seed_text(e)})" for e in experiments)
    text = (f"Claims declared in `{claims.shown}`, checked on {folders}. For each line, {claims.ours}'s mean ± "
            f"sample std over seeds is set against the other's: the best mean among the other models by the "
            f"metric's direction, unless the line names one. Test: paired t-test over the seeds both ran. "
            f"p (column Holm): Holm over all pairs of models of the dataset and metric column, as comparisons.csv. "
            f"p (table Holm): Holm over every test of this table as one family; it decides the outcome "
            f"(α = {ALPHA:g}), being the stricter reading of claims read together.")
    if ablation is not None:
        objectives = ", ".join(ablation.summary["model"].drop_duplicates())
        text += (f" Ablation lines: objectives {objectives} of {claims.ours} in "
                 f"`{ablation.name}` ({_seed_text(ablation)}), compared per seed by the same test.")
    sampler = ("Sampler, for the generation metrics: prior, the model's own; gmm, a Gaussian mixture fitted on the "
               "training codes (ex-post density estimation), its rows named with _gmm.")
    interval = ("Difference, 95% interval: for the per-image metrics (recon_sse, denoise_sse_s*, knn{k}_acc), "
                "ours − other, by a bootstrap that resamples seeds and then test images within each seed (the same "
                "images for both), from the folder's per_image/; where there is none the cell says why "
                "(experiments from before per-image values have no per_image/ folder). Other metrics: —.")
    rule = ("Verdict, over the lines that count: holds when every one is a significant win; does not hold when "
            "none is; otherwise the counts of wins, losses and lines within noise. A line not tested (metric or "
            "model missing, fewer than 2 shared seeds) is not a win. A line is exploratory, shown but not "
            "counted, when it was declared after a run it reads had finished (runs.csv finished_at; a date "
            "counts from the end of its day, UTC) or when those finish times are unknown. Only the chosen pair "
            "is tested: a win does not say the model beats every other significantly.")
    return [text, "", sampler, "", interval, "", rule, ""]


CONTEXT_NOTE = ("No verdict here; read the claims with these. nn_train_ratio: the samples' median distance to their "
                "nearest training image over the same for test images (about 1: no copying; well below 1: copying). "
                "copying_ct: Meehan et al.'s C_T (strongly negative: copying; strongly positive: underfitting). "
                "active_units: latent dimensions whose codes vary. Training cost: mean over the successful runs "
                "(runs.csv; \"—\" without it).")


def _training_cost(source: Source) -> pd.DataFrame:
    """(dataset, model label) -> mean train_seconds and epochs_run of the successful runs (the report has
    no per-model cost); empty without metrics.csv, which names each run's label."""
    if source.values is None:
        return pd.DataFrame(columns=COST_COLUMNS)
    runs = source.runs
    labels = source.values.drop_duplicates("run_id").set_index("run_id")["label"]
    ok = runs[runs["status"] == "ok"].assign(label=runs["run_id"].map(labels))
    numbers = {c: pd.to_numeric(ok[c], errors="coerce") if c in ok else np.nan for c in COST_COLUMNS}
    return ok.assign(**numbers).groupby(["dataset", "label"])[COST_COLUMNS].mean()


def _rescored_only(source: Source) -> bool:
    """Every run scored another experiment's weights (run --weights-from): no training cost of its own,
    and none of this table's measures, which its source's row gives."""
    return source.values is not None and not source.runs.empty and bool(rescored(source.runs).all())


def _context_table(experiments: list[Source]) -> list[str]:
    """Copying, active units and training cost of every model: what a reader must also know."""
    columns = list(dict.fromkeys(c for metric in CONTEXT_METRICS for e in experiments
                                 for c in _metric_columns(e.summary, metric)))
    several = len(experiments) > 1
    lines = [_row(["dataset", "model", *map(md_escape, columns), "train seconds (mean)", "epochs (mean)"]),
             "|:---|:---|" + "---:|" * (len(columns) + 2)]
    for source in [e for e in experiments if not _rescored_only(e)]:
        cost = _training_cost(source)
        for dataset, seeds in source.seeds.items():
            part = source.rows(dataset)
            for model in part["model"].drop_duplicates():
                cells = part[part["model"] == model].set_index("column")
                values = [_cell_text(cells.loc[c], seeds) if c in cells.index else MISSING for c in columns]
                spent = [_number(cost[c].get((dataset, model)), ".4g") for c in COST_COLUMNS]
                lines.append(_row([md_escape(_dataset_name(source.name, dataset, several)), md_escape(model),
                                   *values, *spent]))
    return lines


def claims_markdown(claims: ClaimsFile, experiments: list[Source], ablation: Source | None = None) -> str:
    lines = _preamble(claims, experiments, ablation) + ["## Claims", ""]
    lines += _claims_table(claim_lines(claims, experiments, ablation), claims.ours)
    lines += ["", "## What a reader must also know", "", CONTEXT_NOTE, ""] + _context_table(experiments)
    return "\n".join(lines) + "\n"


def claims_report(folders: Iterable[str | Path], ablation: str | Path | None = None,
                  claims_file: str | Path | None = None) -> str:
    """The claims table of the experiment `folders` (and the ablation folder), as Markdown; the claims
    and their lines from `claims_file` (default studies/claims.toml)."""
    path = Path(claims_file) if claims_file is not None else DEFAULT_PATH
    claims = load_claims_file(path, display_name(path))
    experiments = [load_experiment(folder) for folder in folders]
    if not experiments:
        raise UserError("no experiment folder given")
    return claims_markdown(claims, experiments, load_ablation(ablation, claims.ours) if ablation is not None else None)


BEGIN, END = "<!-- claims: generated by `python cli.py claims", "<!-- end of the generated claims -->"


def generated_section(text: str, command: str) -> str:
    """The claims between markers that name the command, so a document can hold them among its own text."""
    return f"{BEGIN} {command}`; edit the command, not the table -->\n{text}{END}\n"


def write_claims(path: str | Path, text: str, command: str = "") -> Path:
    """Write the Markdown to `path` in one step (never a torn file). When `path` already holds a
    generated section (between BEGIN and END), only that section is replaced; the rest is kept."""
    path = Path(path)
    if not path.parent.is_dir():
        raise UserError(f"cannot write {path}: folder {path.parent} does not exist")
    old = path.read_text() if path.is_file() else ""
    if BEGIN in old and END in old:
        head, rest = old.split(BEGIN, 1)
        tail = rest.split(END, 1)[1]
        text = head + generated_section(text, command) + tail.removeprefix("\n")  # the END line's own newline
    try:
        write_atomic(path, text.encode())
    except OSError as e:
        raise UserError(f"cannot write {path} ({e.strerror})") from None
    return path
