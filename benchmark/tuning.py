"""`aebench tune`: each model's own hyperparameters chosen on the validation split, on equal budgets.

What is searched. Every model declares, in its own file, `search_space`: candidate values for each of
its own hyperparameters (models/contract.py). The space is the grid of their combinations, less the
points the training set cannot support (the config's check_data: a K above the number of training
images is dropped, and the output says how many). Every model gets the same budget, --budget B
trials: the grid in a fixed pseudo-random order (seeded by TUNING_SEED and the model's name, so a rerun
draws the same trials) cut after B points, or the whole grid when it has no more than B points (then
that model has fewer trials, and the output and tuning.csv say so). The order being fixed, a larger
budget keeps the trials of a smaller one and adds to them.

How a trial is scored. A trial is an ordinary run, one RunSpec per seed, trained like any other (early
stopping on the validation loss) and scored by the one protocol, benchmark.evaluation, on the
VALIDATION split: the evaluation is given DataSplits.scored_on("val"), whose test fields hold the
validation images, so every metric row says split "val" and the FID reference is validation images;
the split is part of the config hash, so a trial never shares a run_id with a test run. Nothing of the
test split is read while choosing.

How the winner is chosen (--select-by). The default, "mean-rank": within one model's trials, each of
recon_sse, knn5_acc and fid ranks the trials (1 = best in the metric's direction, from
benchmark.metrics.directions; ties share their mean rank; a NaN ranks last), and a trial's criterion
is the mean of its three ranks, lowest wins. These are the three things the benchmark scores
(reconstruction, representation, generation), so no single one of them decides, and ranks make an
SSE, an accuracy and an FID commensurable without inventing weights between them. `--select-by
METRIC` chooses on one metric instead, any directed metric the evaluation writes. With several
seeds a trial's metric is its mean over them. A tie goes to the earlier trial; a trial with a failed
run is not a candidate.

Files, in results/<experiment> (default tune-<profile>): what `run` writes (runs.csv, metrics.csv,
history, checkpoints, samples, config.json), so a killed tune resumes where it stopped and a finished
one reruns as a no-op; tuning.csv, one row per trial (TUNING_COLUMNS, plus val_<metric> for each
metric the criterion uses); tuned.toml, a study file of the selected values that `run --config`
retrains and scores on test, written once every trial is recorded.
"""
from __future__ import annotations

import dataclasses
import itertools
import json
import math
import random
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from benchmark.atomic import write_atomic
from benchmark.cell import RunSpec, cached_dataset
from benchmark.errors import UserError, choices
from benchmark.evaluation import EvalConfig, metric_names
from benchmark.metrics.directions import HIGHER, LOWER, direction
from benchmark.options import RUN_OPTIONS, eval_settings
from benchmark.profiles import Profile, get_profile, model_settings
from benchmark.registry import MODELS, get_model_class
from benchmark.results import ResultsStore, csv_bytes
from benchmark.runner import GridOutcome, plan, preflight, run_grid, save_resolved_config
from benchmark.writer_lock import writing
from models.contract import HyperparameterError

TUNING_SEED = 12  # with the model's name, seeds the order in which its grid is tried
VAL = "val"
MEAN_RANK = "mean-rank"
RANKED_METRICS = ("recon_sse", "knn5_acc", "fid")  # reconstruction, representation, generation
TUNING_COLUMNS = ["model", "dataset", "trial", "hparams", "status", "criterion", "criterion_value", "selected",
                  "trials", "budget", "space", "seeds", "run_ids"]
# Options copied into tuned.toml when set: what decides a run's numbers besides the grid.
CARRIED_OPTIONS = ["epochs", "data_root", "out"] + [o.key for o in RUN_OPTIONS if o.target == "eval"]


@dataclass(frozen=True)
class Trial:
    model: str
    number: int  # 1, 2, ... in draw order
    values: dict  # the searched hyperparameters, typed
    specs: tuple[RunSpec, ...]  # one per seed, scored on the validation split

    @property
    def run_ids(self) -> list[str]:
        return [spec.run_id for spec in self.specs]


@dataclass(frozen=True)
class Space:
    points: int  # configurations the training set supports (what is drawn from)
    dropped: int  # configurations of the declared grid it cannot support


@dataclass
class Tuning:
    config: dict  # resolved run options (benchmark.study.resolve)
    dataset: str
    n_train: int
    budget: int
    criterion: str  # MEAN_RANK or a metric name
    trials: list[Trial]
    spaces: dict[str, Space]

    @property
    def folder(self) -> Path:
        return Path(self.config["out"]) / self.config["experiment"]

    @property
    def specs(self) -> list[RunSpec]:
        return [spec for trial in self.trials for spec in trial.specs]

    @property
    def metrics(self) -> tuple[str, ...]:
        return RANKED_METRICS if self.criterion == MEAN_RANK else (self.criterion,)

    def trials_of(self, model: str) -> list[Trial]:
        return [trial for trial in self.trials if trial.model == model]


@dataclass
class TuningOutcome:
    tuning: Tuning
    grid: GridOutcome
    table: pd.DataFrame
    selected: dict[str, Trial]
    wrote_study: bool

    @property
    def ok(self) -> bool:
        return self.wrote_study and not self.grid.failed and len(self.selected) == len(self.tuning.spaces)


# --------------------------------------------------------------------------- the plan


def plan_tuning(config: dict, budget: int, select_by: str) -> Tuning:
    """Every trial of every model, checked (names, budget, criterion, data) before anything is written.
    config: the resolved run options (benchmark.study.resolve); experiment defaults to tune-PROFILE."""
    if budget < 1:
        raise UserError(f"--budget {budget}: expected an integer >= 1 (trials per model)")
    profile = get_profile(config["profile"])
    config = config | {"experiment": config.get("experiment") or f"tune-{profile.name}"}
    criterion = check_criterion(select_by, dataclasses.replace(profile.eval, **eval_settings(config)))
    models = {model: tunable_class(model) for model in config.get("models", list(MODELS))}
    dataset = only_dataset(config.get("datasets", [profile.dataset]))
    n_train = len(cached_dataset(dataset, profile.binarize, config.get("data_root"), "cpu").train_x)
    tuning = Tuning(config, dataset, n_train, budget, criterion, [], {})
    for model, cls in models.items():
        grid = search_grid(cls)
        points = [point for point in grid if supported(model, cls, profile, point, n_train)]
        if not points:
            raise UserError(f"no configuration of {model}'s search space fits the {n_train} training images "
                            f"of {dataset}")
        tuning.spaces[model] = Space(len(points), len(grid) - len(points))
        tuning.trials += [make_trial(tuning, profile, model, number, values)
                          for number, values in enumerate(draw(model, points, budget), 1)]
    return tuning


def tunable_class(model: str):
    cls = get_model_class(model)
    if not cls.search_space:
        tunable = [name for name, c in MODELS.items() if c.search_space]
        raise UserError(f"model '{model}' declares no search space (search_space in its file), so there is "
                        f"nothing to tune; models with one: {choices(tunable)}")
    return cls


def only_dataset(datasets: list[str]) -> str:
    if len(datasets) != 1:
        raise UserError(f"--dataset {','.join(datasets)}: tune one dataset at a time (the selected values "
                        "are per dataset); give each its own --experiment")
    return datasets[0]


def check_criterion(select_by: str, evaluation: EvalConfig) -> str:
    """select_by itself, once every metric it needs is one the evaluation writes and has a direction."""
    available = scored_metrics(evaluation)
    if select_by != MEAN_RANK and select_by not in available:
        raise UserError(f"--select-by '{select_by}': not a metric with a direction that this evaluation writes; "
                        f"choices: {MEAN_RANK}, {choices(available)}")
    missing = [m for m in RANKED_METRICS if m not in available] if select_by == MEAN_RANK else []
    if missing:
        raise UserError(f"--select-by {MEAN_RANK} needs {', '.join(missing)}, which this evaluation does not "
                        f"write (--fid-samples 0?); choose one metric with --select-by")
    return select_by


def scored_metrics(evaluation: EvalConfig) -> list[str]:
    """The metrics with a direction that evaluate() writes under this configuration."""
    return [name for name in metric_names(evaluation) if direction(name)]


def search_grid(cls) -> list[dict]:
    """Every combination of the model's candidate values, in declaration order."""
    fields = list(cls.search_space)
    return [dict(zip(fields, values)) for values in itertools.product(*cls.search_space.values())]


def supported(model: str, cls, profile: Profile, point: dict, n_train: int) -> bool:
    """Whether the training set can support this point (a declared value that is invalid is a bug: raised)."""
    config = cls.Config.from_overrides(model_settings(profile, cls) | point, model)
    try:
        config.check_data(n_train)
    except HyperparameterError:
        return False
    return True


def draw(model: str, points: list[dict], budget: int) -> list[dict]:
    """The first `budget` points in the model's fixed order (all of them when there are fewer)."""
    order = list(points)
    random.Random(f"{TUNING_SEED}/{model}").shuffle(order)  # str seeds hash the same in every process
    return order[:budget]


def make_trial(tuning: Tuning, profile: Profile, model: str, number: int, values: dict) -> Trial:
    config = tuning.config
    specs = plan(profile, [model], [tuning.dataset], config["seeds"], config.get("epochs"), {model: values},
                 eval_settings(config))
    return Trial(model, number, values, tuple(dataclasses.replace(spec, split=VAL) for spec in specs))


# --------------------------------------------------------------------------- running and choosing


def run_tuning(tuning: Tuning, device: str, executor=None, progress: bool = True) -> TuningOutcome:
    """Run the trials not yet recorded, then write tuning.csv and (all trials recorded) tuned.toml."""
    data_root = tuning.config.get("data_root")
    preflight(tuning.specs, data_root, device)
    store = ResultsStore(tuning.folder)
    with writing(tuning.folder, "tune"):
        save_resolved_config(tuning.folder, tuning.config | {"budget": tuning.budget, "select_by": tuning.criterion},
                             tuning.specs)
        grid = run_grid(tuning.specs, store, device, data_root, progress=progress, executor=executor)
        table = tuning_table(tuning, store.runs(), store.metrics())
        selected = {row.model: tuning.trials_of(row.model)[row.trial - 1]
                    for row in table[table["selected"]].itertuples()}
        write_atomic(tuning.folder / "tuning.csv", csv_bytes(table))
        study = tuning.folder / "tuned.toml"
        complete = bool(selected) and not (table["status"] == "missing").any()
        if complete:
            write_atomic(study, tuned_study(tuning, selected, table).encode())
        else:
            study.unlink(missing_ok=True)  # an older one would not describe these trials
    return TuningOutcome(tuning, grid, table, selected, complete)


def tuning_table(tuning: Tuning, runs: pd.DataFrame, metrics: pd.DataFrame) -> pd.DataFrame:
    """One row per trial: its values, status, validation metrics, criterion and whether it is selected."""
    status = dict(zip(runs["run_id"], runs["status"]))
    scored = metrics[metrics["split"] == VAL]
    table = pd.DataFrame([trial_row(tuning, trial, status, scored) for trial in tuning.trials])
    table["criterion"] = tuning.criterion
    table["criterion_value"] = pd.concat([criterion_values(tuning, group) for _, group in table.groupby("model")])
    table["selected"] = False
    better = LOWER if tuning.criterion == MEAN_RANK else direction(tuning.criterion)
    for _, values in table.groupby("model")["criterion_value"]:
        if values.notna().any():
            table.loc[values.idxmin() if better == LOWER else values.idxmax(), "selected"] = True
    columns = TUNING_COLUMNS[:5] + [f"val_{m}" for m in tuning.metrics] + TUNING_COLUMNS[5:]
    return table[columns]


def trial_row(tuning: Tuning, trial: Trial, status: dict[str, str], scored: pd.DataFrame) -> dict:
    states = {status.get(run_id, "missing") for run_id in trial.run_ids}
    state = "missing" if "missing" in states else "failed" if states != {"ok"} else "ok"
    means = scored[scored["run_id"].isin(trial.run_ids)].groupby("metric")["value"].mean()
    return {"model": trial.model, "dataset": tuning.dataset, "trial": trial.number,
            "hparams": json.dumps(trial.values), "status": state,
            **{f"val_{m}": means.get(m, math.nan) if state == "ok" else math.nan for m in tuning.metrics},
            "trials": len(tuning.trials_of(trial.model)), "budget": tuning.budget,
            "space": tuning.spaces[trial.model].points, "seeds": json.dumps(tuning.config["seeds"]),
            "run_ids": ";".join(trial.run_ids)}


def criterion_values(tuning: Tuning, trials: pd.DataFrame) -> pd.Series:
    """The criterion of one model's trials (NaN for a trial that is not a candidate)."""
    ok = trials[trials["status"] == "ok"]
    if tuning.criterion != MEAN_RANK:
        return ok[f"val_{tuning.criterion}"].reindex(trials.index)
    ranks = [ok[f"val_{m}"].rank(ascending=direction(m) != HIGHER, na_option="bottom") for m in RANKED_METRICS]
    return pd.concat(ranks, axis=1).mean(axis=1).reindex(trials.index)


# --------------------------------------------------------------------------- tuned.toml and the summary


def tuned_study(tuning: Tuning, selected: dict[str, Trial], table: pd.DataFrame) -> str:
    """A study file (benchmark.study) of the selected values, with a header saying how they were chosen."""
    config = tuning.config
    keys = {"models": list(selected), "datasets": [tuning.dataset], "profile": config["profile"],
            "experiment": f"{config['experiment']}-tuned", "note": tuned_note(tuning)}
    keys |= {key: config[key] for key in CARRIED_OPTIONS if config.get(key) is not None}
    lines = [f"# {line}" for line in study_header(tuning, table)]
    lines += [f"{key} = {toml_value(value)}" for key, value in keys.items()]
    for model, trial in selected.items():
        lines += ["", f"[hparams.{model}]"] + [f"{field} = {toml_value(v)}" for field, v in trial.values.items()]
    return "\n".join(lines) + "\n"


def tuned_note(tuning: Tuning) -> str:
    """What the report of the retrained experiment says about where its hyperparameters came from."""
    return (f"Each model's own hyperparameters were tuned by `aebench tune` on the validation split of "
            f"{tuning.dataset} (profile {tuning.config['profile']}, seeds {tuning.config['seeds']}): "
            f"{tuning.budget} trials per model ({'; '.join(trial_counts(tuning))}), criterion "
            f"{describe_criterion(tuning.criterion)}; tuning experiment {tuning.folder.name}.")


def study_header(tuning: Tuning, table: pd.DataFrame) -> list[str]:
    config = tuning.config
    path = tuning.folder / "tuned.toml"
    return ["Tuned by `aebench tune`: each model's own hyperparameters, chosen on the VALIDATION split.",
            f"tuning experiment: {tuning.folder} (trials in tuning.csv)",
            f"dataset: {tuning.dataset}; profile: {config['profile']}; seeds: {config['seeds']}",
            f"budget: {tuning.budget} trials per model; " + "; ".join(trial_counts(tuning)),
            f"criterion: {describe_criterion(tuning.criterion)}",
            f"retrain and score on test: python cli.py run --config {path} --seeds 0,1,2,3,4"]


def describe_criterion(criterion: str) -> str:
    if criterion == MEAN_RANK:
        return f"{MEAN_RANK}, the mean of each trial's ranks in {', '.join(RANKED_METRICS)} (lower is better)"
    return f"{criterion} ({'lower' if direction(criterion) == LOWER else 'higher'} is better)"


def trial_counts(tuning: Tuning) -> list[str]:
    """Per model: how many trials, out of how many points, and why fewer than the budget."""
    counts = []
    for model, space in tuning.spaces.items():
        text = f"{model} {len(tuning.trials_of(model))} of {space.points}"
        if space.points <= tuning.budget:
            text += " (its whole grid)"
        if space.dropped:
            text += f" ({space.dropped} dropped: the {tuning.n_train} training images cannot support them)"
        counts.append(text)
    return counts


def summary_lines(outcome: TuningOutcome) -> list[str]:
    """What the command prints after the trials: the runs, the choice per model, the files."""
    tuning, grid = outcome.tuning, outcome.grid
    if grid.skipped and not (grid.done or grid.failed or grid.lost):
        lines = [f"Nothing to do: all {len(grid.skipped)} trial runs are already recorded in {tuning.folder}."]
    else:
        lines = [f"Trial runs: {len(grid.done)} done, {len(grid.failed)} failed, {len(grid.lost)} lost, "
                 f"{len(grid.skipped)} recorded earlier; results in {tuning.folder}"]
    lines += [f"Budget {tuning.budget} trials per model: " + "; ".join(trial_counts(tuning)) + "."]
    lines += [f"Criterion on the validation split: {describe_criterion(tuning.criterion)}."]
    lines += [choice_line(model, outcome) for model in tuning.spaces]
    failed = outcome.table[outcome.table["status"] == "failed"]
    if len(failed):
        lines.append(f"Trials with a failed run: {len(failed)} (status in tuning.csv, reasons in runs.csv); "
                     "they were not candidates.")
    if outcome.wrote_study:
        lines.append(f"Wrote tuning.csv and tuned.toml in {tuning.folder}; retrain and score on test with:\n"
                     f"  python cli.py run --config {tuning.folder / 'tuned.toml'} --seeds 0,1,2,3,4")
    elif (outcome.table["status"] == "missing").any():
        lines.append(f"Wrote tuning.csv in {tuning.folder}; tuned.toml needs every trial recorded: "
                     "run the same command again.")
    else:
        lines.append(f"Wrote tuning.csv in {tuning.folder}; no trial succeeded, so there is no tuned.toml.")
    return lines


def choice_line(model: str, outcome: TuningOutcome) -> str:
    trial = outcome.selected.get(model)
    if trial is None:
        return f"  {model}: no trial succeeded; not in tuned.toml"
    row = outcome.table[(outcome.table["model"] == model) & outcome.table["selected"]].iloc[0]
    values = ", ".join(f"{k}={v}" for k, v in trial.values.items())
    return f"  {model}: trial {trial.number} selected, {values} ({outcome.tuning.criterion} {row.criterion_value:.4g})"


def toml_value(value) -> str:
    """A TOML literal of a plain value (JSON's string escapes are TOML's)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(str(value))
