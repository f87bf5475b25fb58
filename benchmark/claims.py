"""The claims table: does each claim of the SWAE paper's abstract hold in our results?

Input: experiment folders as `python cli.py report FOLDER` leaves them (summary.csv and comparisons.csv;
where they are missing they are computed in memory from metrics.csv and runs.csv by the report's own
code, and nothing is written into the folder), and optionally one SWAE ablation folder: runs of the
model swae or its named variants (swae-xz, swae-zrec), whose hparams (runs.csv, JSON) differ in
`objective` (xzrec, xz, zrec).

One line per (claim, metric column, dataset):
- a model line sets SWAE against the best baseline of that column (best mean by the metric's direction,
  benchmark/metrics/directions.py; baselines = every model but swae) and takes the Holm-corrected p of
  that pair from comparisons.csv: paired t-test over the seeds both ran, Holm over all pairs of models of
  the (dataset, column), alpha 0.05 (benchmark/summary.py). Only the best-mean baseline is tested, not
  every baseline;
- an ablation line sets one objective against another on per-seed values, tested the same way
  (benchmark.stats.pairwise_comparisons, Holm over all pairs of objectives of the (dataset, column)),
  since comparisons.csv compares models, not objectives.
A line's outcome is "<ours> better (significant)" (a win), "<ours> worse (significant)", "within noise"
(Holm p > alpha) or "not tested" (metric or model missing, fewer than 2 shared seeds, or a difference
without variance); "not tested" is not a win.

The verdict of a claim, over all its lines (every dataset, metric column and ablation line):
  holds          every line is a win (significant, in SWAE's or the claimed objective's favour);
  does not hold  no line is a win (suffixed "(nothing tested)" when no line could be tested);
  mixed          otherwise.
"""
from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.atomic import write_atomic
from benchmark.errors import UserError
from benchmark.experiment import Results, column_labels, load_results
from benchmark.metrics.directions import HIGHER, LOWER, direction
from benchmark.render import format_value, md_escape
from benchmark.report import SUMMARY_COLUMNS, tidy_summary
from benchmark.results import read_csv, rescored
from benchmark.stats import pairwise_comparisons
from benchmark.summary import ALPHA, COMPARISON_COLUMNS, HIGHER_IS_BETTER, significance, summarize
from benchmark.tables import Cell

SWAE = "swae"
OBJECTIVES = ("xzrec", "xz", "zrec")
DENOISE = "denoise_sse_s*"  # stands for the one denoise_sse_s<sigma> column chosen per dataset
DENOISE_PREFIX = "denoise_sse_s"
DENOISE_SIGMA = 0.3  # the noise level read when measured; else the nearest one
EXTRA_METRICS = ("nn_train_ratio", "copying_ct", "active_units")
MISSING = "—"
NOT_TESTED = "not tested"
WITHIN_NOISE = "within noise"
HOLDS, DOES_NOT_HOLD, MIXED = "holds", "does not hold", "mixed"


@dataclass(frozen=True)
class Claim:
    text: str
    metrics: tuple[str, ...]  # SWAE against the best baseline on each
    ablation: tuple[tuple[str, str, str], ...] = ()  # (claimed better objective, other objective, metric)


CLAIMS = (
    Claim("Superior kNN classification of latent codes", ("knn5_acc", "linear_acc")),
    Claim("Superior reconstruction", ("recon_sse",)),
    Claim("Superior generation", ("fid", "kid", "precision", "recall")),
    # xz against zrec is the line; xzrec against zrec is the cleaner test (the paper's objective
    # with and without its data-space term, both reconstructing), so both are reported
    Claim("Denoising effect from the data-space loss", (DENOISE,), (("xz", "zrec", DENOISE), ("xzrec", "zrec", DENOISE))),
    Claim("Local structure preserved in latent space", ("trustworthiness_k10", "continuity_k10")),
    Claim("The reconstruction term benefits generation and reconstruction", (),
          (("xzrec", "xz", "fid"), ("xzrec", "xz", "recon_sse"))),
)


@dataclass
class Line:
    claim: str
    metric: str  # the column as the report names it (backbone included), or the claimed metric when missing
    dataset: str
    ours: str
    theirs: str
    p_holm: float
    outcome: str
    win: bool


# ---------------------------------------------------------------- reading experiments


def display_name(folder: str | Path) -> str:
    """The folder relative to the current directory, or its name: the output never holds absolute paths."""
    resolved = Path(folder).resolve()
    try:
        return str(resolved.relative_to(Path.cwd().resolve())) or "."
    except ValueError:
        return resolved.name


@dataclass
class Experiment:
    name: str
    summary: pd.DataFrame  # summary.csv's columns plus `column` (as comparisons.csv names it)
    comparisons: pd.DataFrame
    results: Results | None  # runs and per-run values, for the training cost; None without metrics.csv

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
    comparisons = comparisons.assign(better=comparisons["better"].fillna("").astype(str),
                                     significant=comparisons["significant"].astype(str).str.lower() == "true")
    return Experiment(display_name(path), _with_columns(summary), comparisons, results)


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


def _columns(frame: pd.DataFrame, metric: str) -> list[str]:
    """The report's columns of one claimed metric in `frame` (several when several backbones measured it)."""
    if metric == DENOISE:
        metric = _denoise_metric(frame["metric"])
    return list(frame.loc[frame["metric"] == metric, "column"].drop_duplicates()) if metric else []


def _is_swae(label: str) -> bool:
    return label == SWAE or label.startswith(SWAE + " (")  # "swae (abc123)": one of several configurations


def _swae_label(labels: Iterable[str], name: str, dataset: str) -> str | None:
    found = [label for label in dict.fromkeys(labels) if _is_swae(label)]
    if len(found) > 1:
        raise UserError(f"{name}: {dataset} has {len(found)} SWAE configurations ({', '.join(found)}); a claims "
                        f"experiment needs one, and objectives go to --ablation")
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


def _outcome(pair: pd.Series | None, ours: str, shown: str) -> tuple[str, bool]:
    """(outcome, win) of the pair for `ours` (named `shown` in the text)."""
    if pair is None:
        return f"{NOT_TESTED} (no comparison)", False
    if pd.isna(pair["p_holm"]):
        note = pair["note"] if isinstance(pair["note"], str) and pair["note"] else "no test possible"
        return f"{NOT_TESTED} ({note.removesuffix(': not tested')})", False
    if not pair["significant"]:
        return WITHIN_NOISE, False
    if pair["better"] == ours:
        return f"{shown} better (significant)", True
    return f"{shown} worse (significant)", False


def _value(mean: float, std: float, n: int, seeds: int) -> str:
    return format_value(Cell(float(mean), float(std), int(n)), seeds)


def _p_text(p: float) -> str:
    return MISSING if pd.isna(p) else f"{p:.3g}"


# ---------------------------------------------------------------- lines of the claims table


def _dataset_name(experiment_name: str, dataset: str, several: bool) -> str:
    return f"{dataset} ({experiment_name})" if several else dataset


def _model_line(claim: Claim, experiment: Experiment, dataset: str, column: str, shown_dataset: str) -> Line:
    """SWAE against the best baseline in one (dataset, column)."""
    part = experiment.summary[(experiment.summary["dataset"] == dataset) & (experiment.summary["column"] == column)]
    way, seeds = direction(part["metric"].iloc[0]), experiment.seeds(dataset)
    swae = _swae_label(part["model"], experiment.name, dataset)
    best = _best(part[~part["model"].map(_is_swae)], way)
    ours = part[part["model"] == swae].iloc[0] if swae else None
    theirs = f"{md_escape(best['model'])}: {_value(best['mean'], best['std'], best['n_seeds'], seeds)}" if best is not None else MISSING
    line = Line(claim.text, column, shown_dataset, MISSING, theirs, math.nan, "", False)
    if ours is None or best is None:
        line.outcome = f"{NOT_TESTED} ({'no SWAE' if ours is None else 'no baseline'} value)"
        return line
    line.ours = _value(ours["mean"], ours["std"], ours["n_seeds"], seeds)
    pair = _pair(experiment.comparisons, dataset, column, swae, best["model"])
    line.p_holm = math.nan if pair is None else float(pair["p_holm"])
    line.outcome, line.win = _outcome(pair, swae, "SWAE")
    return line


def _missing_line(claim: Claim, metric: str, dataset: str, why: str) -> Line:
    return Line(claim.text, metric, dataset, MISSING, MISSING, math.nan, f"{NOT_TESTED} ({why})", False)


def model_lines(claim: Claim, experiments: list[Experiment]) -> list[Line]:
    """The lines of every (metric, experiment, dataset). A metric an experiment did not measure on a
    dataset is a "not tested" line only when no other experiment measured it there: a rescoring folder
    (run --scope generation) adds the Inception rows of a dataset without making the rest untested."""
    several = len(experiments) > 1
    lines = []
    for metric in claim.metrics:
        columns = {(e.name, d): _columns(e.summary[e.summary["dataset"] == d], metric)
                   for e in experiments for d in e.datasets}
        measured = {d for (_, d), found in columns.items() if found}
        for experiment in experiments:
            for dataset in experiment.datasets:
                shown = _dataset_name(experiment.name, dataset, several)
                found = columns[(experiment.name, dataset)]
                if found:
                    lines += [_model_line(claim, experiment, dataset, c, shown) for c in found]
                elif dataset not in measured:
                    lines.append(_missing_line(claim, metric, shown, "metric not measured"))
    return lines


# ---------------------------------------------------------------- the ablation


@dataclass
class Ablation:
    name: str
    values: pd.DataFrame  # dataset, column, metric, objective, seed, value: one row per SWAE run and column
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


def _objective_values(results: Results, name: str) -> pd.DataFrame:
    if "hparams" not in results.runs:
        raise UserError(f"{name}: runs.csv has no hparams column, so no SWAE objective can be read")
    objectives = results.runs.set_index("run_id")["hparams"].map(_objective)
    # the ablation's runs: swae itself and its named variants (swae-xz, swae-zrec: benchmark/registry.py)
    values = results.values[results.values["model"].str.fullmatch(rf"{SWAE}(-[\w-]+)?")]
    values = values.assign(objective=values["run_id"].map(objectives)).dropna(subset=["objective"])
    twice = values[values.duplicated(["dataset", "column", "objective", "seed"], keep=False)]
    if not twice.empty:
        row = twice.iloc[0]
        raise UserError(f"{name}: objective {row['objective']} has several SWAE runs of seed {row['seed']} on "
                        f"{row['dataset']}; an ablation must vary the objective only")
    return values[["dataset", "column", "metric", "objective", "seed", "value"]]


def load_ablation(folder: str | Path) -> Ablation:
    path = _existing_folder(folder)
    name = str(folder)
    if not _has(path, "runs.csv", "metrics.csv"):
        raise UserError(f"{name}: an ablation folder needs runs.csv and metrics.csv (per-seed values), and one is missing")
    values = _objective_values(load_results(path), name)
    found = set(values["objective"])
    objectives = [o for o in OBJECTIVES if o in found] + sorted(found - set(OBJECTIVES))
    if len(objectives) < 2:
        found = f"only objective {objectives[0]}" if objectives else "no swae run with an objective in its hparams"
        raise UserError(f"{name}: not a SWAE ablation ({found}); it needs swae runs of at least two of "
                        f"{', '.join(OBJECTIVES)}")
    return Ablation(display_name(path), values, objectives)


def _objective_cell(values: pd.DataFrame, objective: str, seeds: int) -> str:
    mine = values.loc[values["objective"] == objective, "value"].astype(float)
    mine = mine[np.isfinite(mine.to_numpy())]
    if mine.empty:
        return f"{objective}: {MISSING}"
    return f"{objective}: {_value(mine.mean(), mine.std(ddof=1), len(mine), seeds)}"


def _ablation_line(claim: Claim, ablation: Ablation, dataset: str, column: str, ours: str, other: str) -> Line:
    """Objective `ours` against `other` per seed in one (dataset, column): paired t-test, Holm over all
    pairs of objectives of the column, as comparisons.csv does for models."""
    part = ablation.values[(ablation.values["dataset"] == dataset) & (ablation.values["column"] == column)]
    seeds = ablation.seeds(dataset)
    line = Line(claim.text, column, f"{dataset} (ablation {ablation.name})", _objective_cell(part, ours, seeds),
                _objective_cell(part, other, seeds), math.nan, "", False)
    if not {ours, other} <= set(part["objective"]):
        line.outcome = f"{NOT_TESTED} (objective {ours if ours not in set(part['objective']) else other} not run)"
        return line
    way = HIGHER_IS_BETTER.get(direction(part["metric"].iloc[0]))
    pairs = pairwise_comparisons(part.rename(columns={"objective": "model"}), way, ALPHA)
    pair = _pair(pairs.assign(dataset=dataset, column=column), dataset, column, ours, other)
    line.p_holm = math.nan if pair is None else float(pair["p_holm"])
    line.outcome, line.win = _outcome(pair, ours, ours)
    return line


def ablation_lines(claim: Claim, ablation: Ablation | None) -> list[Line]:
    lines = []
    for ours, other, metric in claim.ablation:
        label = f"{metric} ({ours} vs {other})"
        if ablation is None:
            lines.append(_missing_line(claim, label, MISSING, "no --ablation folder"))
            continue
        for dataset in ablation.values["dataset"].drop_duplicates():
            columns = _columns(ablation.values[ablation.values["dataset"] == dataset], metric)
            lines += ([_ablation_line(claim, ablation, dataset, c, ours, other) for c in columns]
                      or [_missing_line(claim, label, f"{dataset} (ablation {ablation.name})", "metric not measured")])
    return lines


# ---------------------------------------------------------------- verdict


def verdict(lines: list[Line]) -> str:
    """holds: every line a win; does not hold: no line a win; mixed: otherwise (module docstring)."""
    wins = sum(line.win for line in lines)
    if lines and wins == len(lines):
        return HOLDS
    if wins == 0:  # say why: refuted by a significant loss, or only not shown
        if all(line.outcome.startswith(NOT_TESTED) for line in lines):
            return DOES_NOT_HOLD + " (nothing tested)"
        lost = any("worse (significant)" in line.outcome for line in lines)
        return DOES_NOT_HOLD + (" (a baseline significantly better)" if lost else " (within noise: not shown)")
    return MIXED


def claim_lines(experiments: list[Experiment], ablation: Ablation | None) -> list[tuple[Claim, list[Line]]]:
    return [(claim, model_lines(claim, experiments) + ablation_lines(claim, ablation)) for claim in CLAIMS]


# ---------------------------------------------------------------- Markdown


def _row(cells: Iterable[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _claims_table(claims: list[tuple[Claim, list[Line]]]) -> list[str]:
    lines = [_row(["claim", "metric", "dataset", "SWAE", "best baseline", "p (Holm)", "outcome", "verdict"]),
             "|:---|:---|:---|---:|---:|---:|:---|:---|"]
    for claim, claim_rows in claims:
        for i, line in enumerate(claim_rows):
            first = i == 0  # claim and verdict once, on the claim's first line
            lines.append(_row([md_escape(claim.text) if first else "", md_escape(line.metric), md_escape(line.dataset),
                               line.ours, line.theirs, _p_text(line.p_holm), line.outcome,
                               f"**{verdict(claim_rows)}**" if first else ""]))
    return lines


def _seed_text(experiment: Experiment) -> str:
    return ", ".join(f"{d}, {experiment.seeds(d)} seeds" for d in experiment.datasets)


def _header(experiments: list[Experiment], ablation: Ablation | None) -> list[str]:
    folders = "; ".join(f"`{e.name}` ({_seed_text(e)})" for e in experiments)
    text = (f"Claims of the SWAE paper's abstract, checked on {folders}. For each claim and metric column, SWAE's "
            f"mean ± sample std over seeds is set against the best baseline's (best mean by the metric's direction; "
            f"baselines: every other model). Test: paired t-test over the seeds both ran, Holm-corrected over all "
            f"pairs of models within each dataset and metric column, α = {ALPHA:g}, as comparisons.csv.")
    if ablation is not None:
        datasets = ", ".join(f"{d}, {ablation.seeds(d)} seeds" for d in ablation.values["dataset"].drop_duplicates())
        text += (f" Ablation lines: SWAE objectives {', '.join(ablation.objectives)} of `{ablation.name}` ({datasets}), "
                 f"compared per seed by the same test, Holm over all pairs of objectives per dataset and column.")
    rule = ("Verdict: holds when every line is a significant win; does not hold when no line is; mixed otherwise. "
            "A line not tested (metric or model missing, fewer than 2 shared seeds) counts as not a win. Only the "
            "best-mean baseline is tested: a win does not say SWAE beats every baseline significantly.")
    return [text, "", rule, ""]


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
    return list(dict.fromkeys(c for metric in EXTRA_METRICS for e in experiments for c in _columns(e.summary, metric)))


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


def claims_markdown(experiments: list[Experiment], ablation: Ablation | None = None) -> str:
    lines = _header(experiments, ablation) + ["## Claims", ""] + _claims_table(claim_lines(experiments, ablation))
    lines += ["", "## What a reader must also know", "", EXTRA_NOTE, ""] + _extra_table(experiments)
    return "\n".join(lines) + "\n"


def claims_report(folders: Iterable[str | Path], ablation: str | Path | None = None) -> str:
    """The claims table of the experiment `folders` (and the SWAE objective ablation folder), as Markdown."""
    experiments = [load_experiment(folder) for folder in folders]
    if not experiments:
        raise UserError("no experiment folder given")
    return claims_markdown(experiments, load_ablation(ablation) if ablation is not None else None)


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
