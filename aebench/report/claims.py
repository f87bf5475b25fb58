"""The claims table: does each claim hold in our results? The claims and their lines are declared in a
claims file (default studies/claims.toml, read by aebench/report/claims_file.py, whose docstring gives its
keys and the declaration rule); this module knows no claim of its own.

Input: experiment folders as `python cli.py report FOLDER` leaves them (summary.csv and comparisons.csv;
where they are missing they are computed in memory from metrics.csv and runs.csv by the report's own
code, and nothing is written into the folder), and optionally one ablation folder: runs of the model
`ours` or its named variants (swae-xz, swae-zrec), whose hparams (runs.csv, JSON) differ in `objective`.

One table line per declared line, dataset and metric column it finds:
- a model line sets `ours` against the best other model of that column (best mean by the metric's
  direction, aebench/metrics/directions.py), or against the model the line names. Its test is that
  pair's row of comparisons.csv: paired t-test over the seeds both ran. Only that pair is tested, not
  every baseline;
- an ablation line sets one objective against another on per-seed values, by the same test
  (aebench.report.stats.pairwise_comparisons), since comparisons.csv compares models, not objectives.
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

from aebench.plumbing.atomic import write_atomic
from aebench.report.claims_file import DEFAULT_PATH, DENOISE, ClaimsFile, ClaimSpec, LineSpec, load_claims_file
from aebench.errors import UserError
from aebench.store.values import Results, column_labels, load_results
from aebench.report.intervals import ROW_COLUMNS, Interval, difference_interval
from aebench.metrics.directions import HIGHER, LOWER, direction
from aebench.store.per_image import PerImageStore
from aebench.report.render import format_value, md_escape
from aebench.report.writer import SUMMARY_COLUMNS, tidy_summary
from aebench.store.folder import read_csv, rescored
from aebench.report.stats import holm, pairwise_comparisons
from aebench.report.summary import ALPHA, COMPARISON_COLUMNS, HIGHER_IS_BETTER, significance, summarize
from aebench.report.tables import Cell

DENOISE_PREFIX = "denoise_sse_s"
DENOISE_SIGMA = 0.3  # the noise level read when measured; else the nearest one
EXTRA_METRICS = ("nn_train_ratio", "nn_train_ratio_gmm", "copying_ct", "copying_ct_gmm", "active_units")
MISSING = "—"
NOT_TESTED = "not tested"
WITHIN_NOISE = "within noise"
HOLDS, DOES_NOT_HOLD = "holds", "does not hold"
NO_VERDICT = "no verdict (every line exploratory)"
WIN, LOSS, NOISE, UNTESTED = "win", "loss", "noise", "untested"


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
            return UNTESTED
        if self.p_table > ALPHA or self.higher_is_better is None or self.diff == 0:
            return NOISE
        return WIN if (self.diff > 0) == self.higher_is_better else LOSS

    @property
    def outcome(self) -> str:
        text = {UNTESTED: f"{NOT_TESTED} ({self.untested or 'no test possible'})", NOISE: WITHIN_NOISE,
                WIN: f"{self.name} better (significant)", LOSS: f"{self.name} worse (significant)"}[self.result]
        return text + (f"; exploratory, not counted: {self.exploratory}" if self.exploratory else "")


# ---------------------------------------------------------------- reading experiments


def display_name(folder: str | Path) -> str:
    """The folder relative to the current directory, or its name: the output never holds absolute paths."""
    resolved = Path(folder).resolve()
    try:
        return str(resolved.relative_to(Path.cwd().resolve())) or "."
    except ValueError:
        return resolved.name


def _read_runs(folder: Path) -> pd.DataFrame | None:
    """runs.csv, for the finish times the declaration rule reads; None without it."""
    return read_csv(folder / "runs.csv", ["run_id", "dataset", "status"]) if _has(folder, "runs.csv") else None


def exploratory_reason(runs: pd.DataFrame | None, dataset: str, spec: LineSpec) -> str:
    """Why a line reading the successful runs of `dataset` in `runs` is exploratory; "" when every one of
    them finished after its declaration (aebench/report/claims_file.py's rule)."""
    if runs is None or "finished_at" not in runs:
        return "finish times unknown: no runs.csv with finished_at"
    ok = runs[(runs["dataset"] == dataset) & (runs["status"].astype(str) == "ok")]
    finished = pd.to_datetime(ok["finished_at"], utc=True, errors="coerce")
    if ok.empty or finished.isna().any():
        return "finish times unknown: a run without finished_at"
    first = finished.min()
    if first < spec.declared:
        return f"declared {spec.declared_as}, after a run it reads finished at {first:%Y-%m-%d %H:%M} UTC"
    return ""


@dataclass
class Experiment:
    name: str
    summary: pd.DataFrame  # summary.csv's columns plus `column` (as comparisons.csv names it)
    comparisons: pd.DataFrame
    results: Results | None  # runs and per-run values (training cost, intervals); None without metrics.csv
    runs: pd.DataFrame | None  # runs.csv (finish times); None without it
    per_image: PerImageStore

    @property
    def datasets(self) -> list[str]:
        return list(self.summary["dataset"].drop_duplicates())

    def seeds(self, dataset: str) -> int:
        return int(self.summary.loc[self.summary["dataset"] == dataset, "n_seeds"].max())


def _existing_folder(folder: str | Path) -> Path:
    path = Path(folder)
    if not path.is_dir():
        raise UserError(f"{folder}: no such folder")  # as typed: the user's terminal, not the table
    return path


def _has(folder: Path, *names: str) -> bool:
    return all((folder / name).is_file() for name in names)


def _with_columns(summary: pd.DataFrame) -> pd.DataFrame:
    """The summary with the report's column label of each row, so that it matches comparisons.csv."""
    summary = summary.copy()
    for qualifier in ("split", "backbone"):
        summary[qualifier] = summary[qualifier].astype(object).fillna("").astype(str)
    summary["n"] = pd.to_numeric(summary["n"], errors="coerce").astype("Int64")
    summary["model"] = summary["model"].astype(str)
    summary["column"] = column_labels(summary)
    return summary


def _tables(folder: Path, results: Results | None, name: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """summary and comparisons: as the report wrote them, else computed the way it computes them."""
    if _has(folder, "summary.csv", "comparisons.csv"):
        summary = read_csv(folder / "summary.csv", SUMMARY_COLUMNS)
        return summary, read_csv(folder / "comparisons.csv", COMPARISON_COLUMNS)
    if results is None:
        raise UserError(f"{name}: no summary.csv and comparisons.csv, and no metrics.csv and runs.csv to compute "
                        f"them from; is it an experiment folder (as `python cli.py run` writes it)?")
    comparisons, _ = significance(results.values)
    return tidy_summary(summarize(results.values)), comparisons


def load_experiment(folder: str | Path) -> Experiment:
    path = _existing_folder(folder)
    results = load_results(path) if _has(path, "metrics.csv", "runs.csv") else None
    summary, comparisons = _tables(path, results, str(folder))
    if summary.empty:
        raise UserError(f"{folder}: summary.csv has no rows")
    # A CSV round trip leaves "" as NaN and may leave booleans as text.
    comparisons = comparisons.assign(note=comparisons["note"].astype(object).fillna("").astype(str))
    return Experiment(display_name(path), _with_columns(summary), comparisons, results, _read_runs(path),
                      PerImageStore(path))


# ---------------------------------------------------------------- which column, which model


def _sigma(metric: str) -> float:
    try:
        return float(metric.removeprefix(DENOISE_PREFIX))
    except ValueError:
        return math.nan


def _denoise_metric(metrics: Iterable[str]) -> str | None:
    """denoise_sse_s0.3 when measured, else the measured noise level nearest to it (the larger on a tie)."""
    found = [m for m in set(metrics) if m.startswith(DENOISE_PREFIX) and not math.isnan(_sigma(m))]
    return min(found, key=lambda m: (abs(_sigma(m) - DENOISE_SIGMA), -_sigma(m)), default=None)


def _metric_columns(frame: pd.DataFrame, metric: str, backbone: str = "") -> list[str]:
    """The report's columns of one metric in `frame` (several when several backbones measured it), only
    those whose backbone starts with `backbone` when given."""
    if metric == DENOISE:
        metric = _denoise_metric(frame["metric"])
    rows = frame[frame["metric"] == metric] if metric else frame.iloc[:0]
    if backbone:
        rows = rows[rows["backbone"].astype(str).str.startswith(backbone)]
    return list(rows["column"].drop_duplicates())


def _columns(frame: pd.DataFrame, spec: LineSpec) -> list[str]:
    return _metric_columns(frame, spec.row_metric, spec.backbone)


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


def _pair(comparisons: pd.DataFrame, dataset: str, column: str, a: str, b: str) -> pd.Series | None:
    """The comparisons row of models a and b (either order) in one column; None when absent."""
    here = comparisons[(comparisons["dataset"] == dataset) & (comparisons["column"] == column)]
    match = here[((here["model_a"] == a) & (here["model_b"] == b)) | ((here["model_a"] == b) & (here["model_b"] == a))]
    return match.iloc[0] if len(match) else None


def _test(line: Line, pair: pd.Series | None, ours: str) -> None:
    """The line's test from its pair's row (comparisons.csv's columns), oriented so that diff is ours - other."""
    if pair is None:
        line.untested = "no comparison"
        return
    line.p_value, line.p_column = float(pair["p_value"]), float(pair["p_holm"])
    line.diff = float(pair["mean_diff"]) * (1 if pair["model_a"] == ours else -1)
    if math.isnan(line.p_value):
        note = pair["note"] if isinstance(pair["note"], str) and pair["note"] else "no test possible"
        line.untested = note.removesuffix(": not tested")


def _value(mean: float, std: float, n: int, seeds: int) -> str:
    return format_value(Cell(float(mean), float(std), int(n)), seeds)


def _p_text(p: float) -> str:
    return MISSING if pd.isna(p) else f"{p:.3g}"


def _member_rows(values: pd.DataFrame, key: str, member: str) -> pd.DataFrame:
    """One member's rows (run_id, seed, metric, n, value) of one (dataset, column) frame of values."""
    rows = values[values[key] == member]
    return rows[np.isfinite(rows["value"].to_numpy(dtype=float))][ROW_COLUMNS]


# ---------------------------------------------------------------- lines of the claims table


def _dataset_name(experiment_name: str, dataset: str, several: bool) -> str:
    return f"{dataset} ({experiment_name})" if several else dataset


def _experiment_interval(experiment: Experiment, dataset: str, column: str, ours: str, theirs: str) -> Interval:
    if experiment.results is None:
        return Interval(note="no metrics.csv, so no per-run values")
    values = experiment.results.values
    here = values[(values["dataset"] == dataset) & (values["column"] == column)]
    return difference_interval(experiment.per_image, _member_rows(here, "label", ours),
                               _member_rows(here, "label", theirs))


def _model_line(claim: ClaimSpec, spec: LineSpec, ours_model: str, experiment: Experiment, dataset: str,
                column: str, shown_dataset: str) -> Line:
    """`ours` against the best other model (or the named one) in one (dataset, column)."""
    part = experiment.summary[(experiment.summary["dataset"] == dataset) & (experiment.summary["column"] == column)]
    way, seeds = direction(part["metric"].iloc[0]), experiment.seeds(dataset)
    ours = _label(part["model"], ours_model, experiment.name, dataset, ", and objectives go to --ablation")
    others = part[~part["model"].map(lambda label: _is(label, ours_model))]
    if spec.against:
        named = _label(others["model"], spec.against, experiment.name, dataset)
        best = others[others["model"] == named].iloc[0] if named else None
    else:
        best = _best(others, way)
    line = Line(claim.text, spec, column, shown_dataset, MISSING, MISSING, ours_model, HIGHER_IS_BETTER.get(way),
                exploratory=exploratory_reason(experiment.runs, dataset, spec))
    if best is not None:
        line.theirs = f"{md_escape(best['model'])}: {_value(best['mean'], best['std'], best['n_seeds'], seeds)}"
    if ours is None or best is None:
        line.untested = (f"no {ours_model} value" if ours is None else
                         f"no {spec.against} value" if spec.against else "no other model's value")
        return line
    mine = part[part["model"] == ours].iloc[0]
    line.ours = _value(mine["mean"], mine["std"], mine["n_seeds"], seeds)
    _test(line, _pair(experiment.comparisons, dataset, column, ours, best["model"]), ours)
    line.interval = _experiment_interval(experiment, dataset, column, ours, best["model"])
    return line


def _missing_line(claim: ClaimSpec, spec: LineSpec, metric: str, dataset: str, why: str, exploratory: str = "") -> Line:
    return Line(claim.text, spec, metric, dataset, MISSING, MISSING, "", untested=why, exploratory=exploratory)


def model_lines(claim: ClaimSpec, spec: LineSpec, ours: str, experiments: list[Experiment]) -> list[Line]:
    """The lines of one declared model line: every experiment, dataset and column it finds. A metric an
    experiment did not measure on a dataset is a "not tested" line only when no other experiment
    measured it there: a rescoring folder (run --scope generation) adds the Inception rows of a dataset
    without making the rest untested."""
    several = len(experiments) > 1
    columns = {(e.name, d): _columns(e.summary[e.summary["dataset"] == d], spec)
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


# ---------------------------------------------------------------- the ablation


@dataclass
class Ablation:
    name: str
    values: pd.DataFrame  # dataset, column, objective + ROW_COLUMNS: one row per run of ours and column
    runs: pd.DataFrame
    per_image: PerImageStore
    objectives: list[str] = field(default_factory=list)

    def seeds(self, dataset: str) -> int:
        return int(self.values.loc[self.values["dataset"] == dataset, "seed"].nunique())


def _objective(hparams) -> str | None:
    """The `objective` in a runs.csv hparams cell (JSON); None when it has none or is not JSON."""
    try:
        found = json.loads(hparams).get("objective")
    except (TypeError, ValueError, AttributeError):
        return None
    return str(found) if found is not None else None


def _objective_values(results: Results, ours: str, name: str) -> pd.DataFrame:
    if "hparams" not in results.runs:
        raise UserError(f"{name}: runs.csv has no hparams column, so no objective of {ours} can be read")
    objectives = results.runs.set_index("run_id")["hparams"].map(_objective)
    # the ablation's runs: ours itself and its named variants (swae-xz, swae-zrec: aebench/catalog/models.py)
    values = results.values[results.values["model"].astype(str).str.fullmatch(rf"{ours}(-[\w-]+)?")]
    values = values.assign(objective=values["run_id"].map(objectives)).dropna(subset=["objective"])
    twice = values[values.duplicated(["dataset", "column", "objective", "seed"], keep=False)]
    if not twice.empty:
        row = twice.iloc[0]
        raise UserError(f"{name}: objective {row['objective']} has several runs of {ours} with seed {row['seed']} "
                        f"on {row['dataset']}; an ablation must vary the objective only")
    return values[["dataset", "column", "objective", *ROW_COLUMNS]]


def load_ablation(folder: str | Path, ours: str) -> Ablation:
    path = _existing_folder(folder)
    name = str(folder)
    if not _has(path, "runs.csv", "metrics.csv"):
        raise UserError(f"{name}: an ablation folder needs runs.csv and metrics.csv (per-seed values), and one is missing")
    results = load_results(path)
    values = _objective_values(results, ours, name)
    objectives = list(values["objective"].drop_duplicates())
    if len(objectives) < 2:
        found = f"only objective {objectives[0]}" if objectives else f"no {ours} run with an objective in its hparams"
        raise UserError(f"{name}: not an ablation of {ours} ({found}); it needs runs of {ours} (or its named "
                        f"variants) with at least two objectives")
    return Ablation(display_name(path), values, results.runs, PerImageStore(path), objectives)


def _objective_cell(values: pd.DataFrame, objective: str, seeds: int) -> str:
    mine = values.loc[values["objective"] == objective, "value"].astype(float)
    mine = mine[np.isfinite(mine.to_numpy())]
    if mine.empty:
        return f"{objective}: {MISSING}"
    return f"{objective}: {_value(mine.mean(), mine.std(ddof=1), len(mine), seeds)}"


def _ablation_line(claim: ClaimSpec, spec: LineSpec, ablation: Ablation, dataset: str, column: str) -> Line:
    """Objective `ours` against `other` per seed in one (dataset, column): paired t-test, Holm over all
    pairs of objectives of the column (p column), as comparisons.csv does for models."""
    ours, other = spec.objectives
    part = ablation.values[(ablation.values["dataset"] == dataset) & (ablation.values["column"] == column)]
    seeds = ablation.seeds(dataset)
    way = HIGHER_IS_BETTER.get(direction(part["metric"].iloc[0]))
    line = Line(claim.text, spec, column, f"{dataset} (ablation {ablation.name})", _objective_cell(part, ours, seeds),
                _objective_cell(part, other, seeds), ours, way,
                exploratory=exploratory_reason(ablation.runs, dataset, spec))
    run = set(part["objective"])
    if not {ours, other} <= run:
        line.untested = f"objective {ours if ours not in run else other} not run"
        return line
    seeds_of = part[["objective", "seed", "value"]].rename(columns={"objective": "model"})
    pairs = pairwise_comparisons(seeds_of, way, ALPHA)
    _test(line, _pair(pairs.assign(dataset=dataset, column=column), dataset, column, ours, other), ours)
    line.interval = difference_interval(ablation.per_image, _member_rows(part, "objective", ours),
                                        _member_rows(part, "objective", other))
    return line


def ablation_lines(claim: ClaimSpec, spec: LineSpec, ablation: Ablation | None) -> list[Line]:
    ours, other = spec.objectives
    label = f"{spec.row_metric} ({ours} vs {other})"
    if ablation is None:
        return [_missing_line(claim, spec, label, MISSING, "no --ablation folder")]
    lines = []
    for dataset in ablation.values["dataset"].drop_duplicates():
        if spec.dataset and dataset != spec.dataset:
            continue
        columns = _columns(ablation.values[ablation.values["dataset"] == dataset], spec)
        lines += ([_ablation_line(claim, spec, ablation, dataset, c) for c in columns]
                  or [_missing_line(claim, spec, label, f"{dataset} (ablation {ablation.name})", "metric not measured",
                                    exploratory_reason(ablation.runs, dataset, spec))])
    return lines or [_missing_line(claim, spec, label, spec.dataset, "dataset not in the ablation folder")]


# ---------------------------------------------------------------- one family, verdict


def table_holm(lines: list[Line]) -> None:
    """Every tested line's p corrected by Holm as one family (the whole table), into p_table."""
    tested = [line for line in lines if not math.isnan(line.p_value)]
    for line, adjusted in zip(tested, holm(np.array([line.p_value for line in tested]))):
        line.p_table = float(adjusted)


def _counted(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def verdict(lines: list[Line]) -> str:
    """The verdict over the lines that count (module docstring)."""
    counted = [line.result for line in lines if not line.exploratory]
    if not counted:
        return NO_VERDICT
    wins, losses, noise, untested = (counted.count(r) for r in (WIN, LOSS, NOISE, UNTESTED))
    if wins == len(counted):
        return HOLDS
    if wins == 0:
        return DOES_NOT_HOLD + (" (nothing tested)" if untested == len(counted) else "")
    text = f"{_counted(wins, 'win', 'wins')}, {_counted(losses, 'loss', 'losses')}, {noise} within noise"
    return text + (f", {untested} not tested" if untested else "")


def claim_lines(claims: ClaimsFile, experiments: list[Experiment],
                ablation: Ablation | None) -> list[tuple[ClaimSpec, list[Line]]]:
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
    return "| " + " | ".join(cells) + " |"


def _claims_table(claims: list[tuple[ClaimSpec, list[Line]]], ours: str) -> list[str]:
    lines = [_row(["claim", "metric", "sampler", "dataset", "declared", ours, "other", "difference, 95% interval",
                   "p (column Holm)", "p (table Holm)", "outcome", "verdict"]),
             "|:---|:---|:---|:---|:---|---:|---:|---:|---:|---:|:---|:---|"]
    for claim, claim_rows in claims:
        for i, line in enumerate(claim_rows):
            first = i == 0  # claim and verdict once, on the claim's first line
            lines.append(_row([md_escape(claim.text) if first else "", md_escape(line.metric), line.spec.sampler,
                               md_escape(line.dataset), line.spec.declared_as, line.ours, line.theirs,
                               md_escape(line.interval.text()), _p_text(line.p_column), _p_text(line.p_table),
                               md_escape(line.outcome), f"**{verdict(claim_rows)}**" if first else ""]))
    return lines


def _seed_text(experiment: Experiment) -> str:
    return ", ".join(f"{d}, {experiment.seeds(d)} seeds" for d in experiment.datasets)


def _header(claims: ClaimsFile, experiments: list[Experiment], ablation: Ablation | None) -> list[str]:
    folders = "; ".join(f"`{e.name}` ({_seed_text(e)})" for e in experiments)
    text = (f"Claims declared in `{claims.shown}`, checked on {folders}. For each line, {claims.ours}'s mean ± "
            f"sample std over seeds is set against the other's: the best mean among the other models by the "
            f"metric's direction, unless the line names one. Test: paired t-test over the seeds both ran. "
            f"p (column Holm): Holm over all pairs of models of the dataset and metric column, as comparisons.csv. "
            f"p (table Holm): Holm over every test of this table as one family; it decides the outcome "
            f"(α = {ALPHA:g}), being the stricter reading of claims read together.")
    if ablation is not None:
        datasets = ", ".join(f"{d}, {ablation.seeds(d)} seeds" for d in ablation.values["dataset"].drop_duplicates())
        text += (f" Ablation lines: objectives {', '.join(ablation.objectives)} of {claims.ours} in "
                 f"`{ablation.name}` ({datasets}), compared per seed by the same test.")
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


def _cost(experiment: Experiment) -> pd.DataFrame:
    """(dataset, model label) -> mean train_seconds and epochs_run of the successful runs."""
    if experiment.results is None:
        return pd.DataFrame(columns=["train_seconds", "epochs_run"])
    runs = experiment.results.runs
    labels = experiment.results.values.drop_duplicates("run_id").set_index("run_id")["label"]
    ok = runs[runs["status"] == "ok"].assign(label=runs["run_id"].map(labels))
    numbers = {c: pd.to_numeric(ok[c], errors="coerce") if c in ok else np.nan for c in ("train_seconds", "epochs_run")}
    return ok.assign(**numbers).groupby(["dataset", "label"])[["train_seconds", "epochs_run"]].mean()


def _number(value: float) -> str:
    return MISSING if pd.isna(value) else f"{value:.4g}"


def _extra_columns(experiments: list[Experiment]) -> list[str]:
    return list(dict.fromkeys(c for metric in EXTRA_METRICS for e in experiments
                              for c in _metric_columns(e.summary, metric)))


def _rescored_only(experiment: Experiment) -> bool:
    """Every run scored another experiment's weights (run --weights-from): no training cost of its own,
    and none of this table's measures, which its source's row gives."""
    runs = experiment.results.runs if experiment.results is not None else None
    return runs is not None and not runs.empty and bool(rescored(runs).all())


def _extra_table(experiments: list[Experiment]) -> list[str]:
    columns = _extra_columns(experiments)
    several = len(experiments) > 1
    lines = [_row(["dataset", "model", *map(md_escape, columns), "train seconds (mean)", "epochs (mean)"]),
             "|:---|:---|" + "---:|" * (len(columns) + 2)]
    for experiment in [e for e in experiments if not _rescored_only(e)]:
        cost, summary = _cost(experiment), experiment.summary
        for dataset in experiment.datasets:
            seeds, part = experiment.seeds(dataset), summary[summary["dataset"] == dataset]
            for model in part["model"].drop_duplicates():
                cells = part[part["model"] == model].set_index("column")
                values = [_value(cells.at[c, "mean"], cells.at[c, "std"], cells.at[c, "n_seeds"], seeds)
                          if c in cells.index else MISSING for c in columns]
                spent = cost.loc[(dataset, model)] if (dataset, model) in cost.index else pd.Series(dtype=float)
                lines.append(_row([md_escape(_dataset_name(experiment.name, dataset, several)), md_escape(model),
                                   *values, _number(spent.get("train_seconds")), _number(spent.get("epochs_run"))]))
    return lines


EXTRA_NOTE = ("No verdict here; read the claims with these. nn_train_ratio: the samples' median distance to their "
              "nearest training image over the same for test images (about 1: no copying; well below 1: copying). "
              "copying_ct: Meehan et al.'s C_T (strongly negative: copying; strongly positive: underfitting). "
              "active_units: latent dimensions whose codes vary. Training cost: mean over the successful runs "
              "(runs.csv; \"—\" without it).")


def claims_markdown(claims: ClaimsFile, experiments: list[Experiment], ablation: Ablation | None = None) -> str:
    lines = _header(claims, experiments, ablation) + ["## Claims", ""]
    lines += _claims_table(claim_lines(claims, experiments, ablation), claims.ours)
    lines += ["", "## What a reader must also know", "", EXTRA_NOTE, ""] + _extra_table(experiments)
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
