"""`aebench tune`: each model's own hyperparameters chosen on the validation split, on equal budgets.

What is searched. Every model declares, in its own file, `search_space`: a range (FloatRange, IntRange,
log scale where natural) or a Choice for each of its own hyperparameters (models/contract.py); each
space holds its authors' published setting. What this tuning searches (aebench.tune.search_space) is that
space, as widened by an earlier tune of the same study or by `--widen MODEL.NAME=LOW:HIGH`, with an
integer range's upper bound lowered to what the training set supports (check_data: K <= training images),
and a range of epochs (a warm-up) widened no further than the epochs a trial trains (--epochs, else the
profile's).
beta-VAE's space is its RAW beta, 1.5..20 (log), stored as beta_norm = beta * latent_dim / pixels, so
every trial has beta > 1 whatever the image and latent sizes.

How it is searched. Optuna's TPE (aebench.tune.search), one study per model, ask and tell, kept in
a journal file in the tuning folder. Every model gets the same budget, --budget B trials (default 12),
each drawn over its whole space; the draws are seeded by TUNING_SEED, the model, the dataset and the
trial's number, so a rerun draws the same trials, another dataset draws others, and --jobs changes
nothing: each model's study proceeds one trial at a time (after its first, result-free draws), and
the models never wait for each other: a model's next trial is asked as soon as its last one is scored,
so a slow model's trial occupies one worker while the others' trials follow each other on the rest
(run_grid's `follow`). A killed tune resumes: a trial asked but not told is completed first, and its recorded runs
are never retrained. A larger budget keeps the trials of a smaller one and adds to them.

How a trial is scored. A trial is an ordinary run, one RunSpec per seed, trained like any other (early
stopping on the validation loss) and scored by the one protocol, aebench.run.evaluation, on the
VALIDATION split: the evaluation is given DataSplits.scored_on("val"), whose test fields hold the
validation images, so every metric row says split "val" and the FID reference is validation images;
the split is part of the config hash, so a trial never shares a run_id with a test run. Nothing of the
test split is read while choosing. Optuna is told the criterion's metrics (mean over seeds): the three
of mean-rank as a multi-objective study, or the one --select-by metric.

How the winner is chosen (--select-by). The default, "mean-rank": within one model's trials, each of
recon_sse, knn5_acc and fid ranks the trials (1 = best in the metric's direction, from
aebench.metrics.directions; ties share their mean rank; a NaN ranks last), and a trial's criterion
is the mean of its three ranks, lowest wins. These are the three things the benchmark scores
(reconstruction, representation, generation), so no single one of them decides, and ranks make an
SSE, an accuracy and an FID commensurable without inventing weights between them. `--select-by
METRIC` chooses on one metric instead, any directed metric the evaluation writes. A tie goes to the
earlier trial; a trial with a failed run is not a candidate. A selected value within 10% of a bound of
its range (in the range's scale) is "on the edge": tuning.csv's on_edge names it, the summary says to
widen the space, and `tune --widen ... --budget B+N` adds trials to the same study over the wider space.

Files, in results/<experiment> (default tune-<profile>): what `run` writes (runs.csv, metrics.csv,
history, checkpoints, samples, config.json), so a finished tune reruns as a no-op; tuning-journal.log,
the Optuna studies; tuning.csv, one row per trial (TUNING_COLUMNS, plus val_<metric> for recon_sse,
knn5_acc, fid and the criterion); figures/tradeoff-<model>.png, every trial's validation reconstruction
against its FID, the selected trial marked (aebench.report.tuning_figures); tuned.toml, a study file of the
selected values that `run --config` retrains and scores on test, written once every trial is recorded; its
tuning_budget records B, the budget that `run --tune-first` gives a model added to it.
"""
from __future__ import annotations

import dataclasses
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from aebench.catalog.models import MODELS, get_model_class
from aebench.data.datasets import dataset_key
from aebench.errors import UserError, choices
from aebench.metrics.directions import HIGHER, LOWER, direction
from aebench.plumbing.atomic import write_atomic
from aebench.plumbing.writer_lock import writing
from aebench.report.tuning_figures import tradeoff_figures
from aebench.run.cell import RunSpec, cached_dataset
from aebench.run.evaluation import EvalConfig, metric_names
from aebench.run.options import DEFAULTS, RUN_OPTIONS, eval_settings
from aebench.run.profiles import Profile, get_profile, model_settings
from aebench.run.runner import GridOutcome, plan, preflight, run_grid, save_resolved_config
from aebench.run.study import TUNING_BUDGET
from aebench.store.folder import ResultsStore, csv_bytes
from aebench.tune import search as tuning_search
from aebench.tune.search import ask, asked, draw_seed, earlier_bounds, open_study, study_name, tell, unfinished
from aebench.tune.search_space import ModelSpace, model_space, parse_widen

DEFAULT_BUDGET = 12
VAL = "val"
MEAN_RANK = "mean-rank"
RANKED_METRICS = ("recon_sse", "knn5_acc", "fid")  # reconstruction, representation, generation
TUNING_COLUMNS = ["model", "dataset", "trial", "hparams", "status", "criterion", "criterion_value", "selected",
                  "on_edge", "draw", "trials", "budget", "space", "seeds", "run_ids"]
# Options copied into tuned.toml when set: what decides a run's numbers besides the grid.
CARRIED_OPTIONS = ["epochs", "data_root", "out"] + [o.key for o in RUN_OPTIONS if o.target == "eval"]
# Carried only when it differs from the default, so an fp32 tune writes the tuned.toml it always wrote.
CARRIED_UNLESS_DEFAULT = ["precision"]


@dataclass(frozen=True)
class Trial:
    model: str
    number: int  # 1, 2, ... in the order asked
    draw: dict  # what the optimiser drew, in the space's units
    values: dict  # the searched hyperparameters it sets, typed
    specs: tuple[RunSpec, ...]  # one per seed, scored on the validation split

    @property
    def run_ids(self) -> list[str]:
        return [spec.run_id for spec in self.specs]


@dataclass
class Tuning:
    config: dict  # resolved run options (aebench.run.study.resolve)
    dataset: str
    n_train: int
    budget: int
    criterion: str  # MEAN_RANK or a metric name
    spaces: dict[str, ModelSpace]
    studies: dict[str, str]  # model -> its Optuna study's name
    shown: tuple[str, ...]  # the validation metrics tuning.csv shows
    widen: tuple[str, ...] = ()  # the --widen arguments, as given
    trials: list[Trial] = field(default_factory=list)  # asked so far (run_tuning fills it)

    @property
    def folder(self) -> Path:
        return Path(self.config["out"]) / self.config["experiment"]

    @property
    def specs(self) -> list[RunSpec]:
        return [spec for trial in self.trials for spec in trial.specs]

    @property
    def metrics(self) -> tuple[str, ...]:
        """The criterion's metrics: what the optimiser is told."""
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
    figures: list[Path]

    @property
    def ok(self) -> bool:
        return self.wrote_study and not self.grid.failed and len(self.selected) == len(self.tuning.spaces)


# --------------------------------------------------------------------------- the plan


def plan_tuning(config: dict, budget: int, select_by: str, widen: tuple[str, ...] = ()) -> Tuning:
    """Every model's search space and study, checked (names, budget, criterion, data, --widen) before
    anything is written. config: the resolved run options (aebench.run.study.resolve); experiment
    defaults to tune-PROFILE."""
    if budget < 1:
        raise UserError(f"--budget {budget}: expected an integer >= 1 (trials per model)")
    profile = get_profile(config["profile"])
    config = config | {"experiment": config.get("experiment") or f"tune-{profile.name}"}
    evaluation = dataclasses.replace(profile.eval, **eval_settings(config))
    criterion = check_criterion(select_by, evaluation)
    models = {model: tunable_class(model) for model in config.get("models", list(MODELS))}
    dataset = only_dataset(config.get("datasets", [profile.dataset]))
    train_x = cached_dataset(dataset, profile.binarize, config.get("data_root"), "cpu").train_x
    widened = parse_widen(widen, list(models))
    available = scored_metrics(evaluation)
    shown = tuple(dict.fromkeys([m for m in RANKED_METRICS if m in available] + [criterion] * (criterion != MEAN_RANK)))
    tuning = Tuning(config, dataset, len(train_x), budget, criterion, {}, {}, shown, tuple(widen))
    epochs = config.get("epochs") or profile.train.epochs  # what a trial trains at most
    for model, cls in models.items():
        name = study_name(model, study_setup(tuning, profile, model))
        base = model_settings(profile, cls)
        tuning.studies[model] = name
        tuning.spaces[model] = model_space(model, cls, base, len(train_x), tuple(train_x.shape[1:]),
                                           earlier_bounds(tuning.folder, name), widened.get(model), epochs)
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


def precision(config: dict) -> str:
    return config.get("precision", DEFAULTS["precision"])


def scored_metrics(evaluation: EvalConfig) -> list[str]:
    """The metrics with a direction that evaluate() writes under this configuration."""
    return [name for name in metric_names(evaluation) if direction(name)]


def study_setup(tuning: Tuning, profile: Profile, model: str) -> dict:
    """What the model's trials share (everything a run id hashes but the searched values and the seed),
    with the seeds and the objectives: a study learns only from results of the same setup."""
    config = tuning.config
    base = plan(profile, [model], [tuning.dataset], [0], config.get("epochs"), None, eval_settings(config),
                precision(config))[0]
    identity = dataclasses.replace(base, split=VAL).identity()
    searched = {field for field in get_model_class(model).search_space}
    identity["hparams"] = {k: v for k, v in identity.pop("hparams").items() if k not in searched}
    del identity["seed"]
    return identity | {"seeds": config["seeds"], "objectives": list(tuning.metrics)}


def make_trial(tuning: Tuning, profile: Profile, model: str, number: int, draw: dict) -> Trial:
    config = tuning.config
    values = tuning.spaces[model].field_values(draw)
    specs = plan(profile, [model], [tuning.dataset], config["seeds"], config.get("epochs"), {model: values},
                 eval_settings(config), precision(config))
    return Trial(model, number, draw, values, tuple(dataclasses.replace(spec, split=VAL) for spec in specs))


# --------------------------------------------------------------------------- running and choosing


def run_tuning(tuning: Tuning, device: str, executor=None, progress: bool = True) -> TuningOutcome:
    """Complete the trials asked earlier, and ask each model's next trials as soon as its earlier ones are
    scored, until every model has its budget; then write tuning.csv, the trade-off figures and (all
    recorded) tuned.toml. A model's first STARTUP_TRIALS draws do not depend on results, so a fresh tune
    asks them at once (which keeps every worker busy); after them, a model's next trial is asked when all
    its trials have been told (TPE's draw depends on them). Models never wait for each other: a slow
    model's trial runs on one worker while the others' trials follow each other on the rest. The draws
    are those of one trial at a time, whatever the order in which trials finish: each is seeded by its
    number and sees the same results (tests/test_tuning.py)."""
    profile = get_profile(tuning.config["profile"])
    store = ResultsStore(tuning.folder)
    with writing(tuning.folder, "tune"):
        studies = {model: open_study(tuning.folder, name, objective_directions(tuning))
                   for model, name in tuning.studies.items()}
        tuning.trials = [make_trial(tuning, profile, model, t.number + 1, t.params)
                         for model, study in studies.items() for t in asked(study)[:tuning.budget]]
        first = list(tuning.trials)  # the trials asked by an earlier tune (recorded ones are skipped)
        first += [trial for model, study in studies.items() for trial in next_trials(tuning, profile, model, study)]

        seconds = model_seconds(store.runs())

        def after(spec: RunSpec) -> list[RunSpec]:
            """A recorded run's trial told once all its runs are recorded, and its model's next trial."""
            model = spec.model
            seconds.update(model_seconds(store.runs()))
            tell_results(tuning, studies, [t for t in tuning.trials_of(model) if spec.run_id in t.run_ids], store)
            trials = next_trials(tuning, profile, model, studies[model])
            if trials:
                prepare(tuning, trials, device)
            return [spec for trial in trials for spec in trial.specs]

        prepare(tuning, first, device)
        grid = run_grid([spec for trial in first for spec in trial.specs], store, device,
                        tuning.config.get("data_root"), progress=progress, executor=executor, follow=after,
                        rank=lambda spec: seconds.get(spec.model, math.inf))
        table = tuning_table(tuning, store.runs(), store.metrics())
        selected = {row.model: tuning.trials_of(row.model)[row.trial - 1]
                    for row in table[table["selected"]].itertuples()}
        write_atomic(tuning.folder / "tuning.csv", csv_bytes(table))
        figures = tradeoff_figures(table, tuning.folder, describe_criterion(tuning.criterion))
        study = tuning.folder / "tuned.toml"
        complete = bool(selected) and not (table["status"] == "missing").any()
        if complete:
            write_atomic(study, tuned_study(tuning, selected, table).encode())
        else:
            study.unlink(missing_ok=True)  # an older one would not describe these trials
    return TuningOutcome(tuning, grid, table, selected, complete, figures)


def model_seconds(runs: pd.DataFrame) -> dict[str, float]:
    """Each model's mean seconds per run (training and evaluation) in the tuning folder: how long its
    next trial is likely to take. Models not yet measured are absent (ranked first: they may be slowest)."""
    if runs.empty:
        return {}
    cost = sum(pd.to_numeric(runs[column], errors="coerce").fillna(0) for column in ("train_seconds", "eval_seconds"))
    return cost.groupby(runs["model"]).mean().to_dict()


def prepare(tuning: Tuning, trials: list[Trial], device: str) -> None:
    """Before new trials run: config.json names every trial so far, and their runs pass the preflight."""
    save_resolved_config(tuning.folder, tuning.config | {"budget": tuning.budget, "select_by": tuning.criterion,
                                                         "widen": list(tuning.widen)}, tuning.specs)
    preflight([spec for trial in trials for spec in trial.specs], tuning.config.get("data_root"), device)


def objective_directions(tuning: Tuning) -> list[str]:
    return ["maximize" if direction(metric) == HIGHER else "minimize" for metric in tuning.metrics]


def next_trials(tuning: Tuning, profile: Profile, model: str, study) -> list[Trial]:
    """The model's trials to ask now: the startup draws it still lacks, else (every trial told) one."""
    have = len(tuning.trials_of(model))
    if have < tuning_search.STARTUP_TRIALS:  # read at call time (tests lower it)
        count = tuning_search.STARTUP_TRIALS - have
    else:
        count = 0 if any(unfinished(trial) for trial in asked(study)) else 1
    return [next_trial(tuning, profile, model, study) for _ in range(min(count, tuning.budget - have))]


def next_trial(tuning: Tuning, profile: Profile, model: str, study) -> Trial:
    number = len(tuning.trials_of(model)) + 1
    index, draw = ask(study, tuning.spaces[model], draw_seed(model, dataset_key(tuning.dataset), number))
    assert index + 1 == number, f"{model}: study trial {index} is not the tuning's trial {number}"
    trial = make_trial(tuning, profile, model, number, draw)
    tuning.trials.append(trial)  # so that trials_of() counts it before the next ask
    return trial


def tell_results(tuning: Tuning, studies: dict, batch: list[Trial], store: ResultsStore) -> None:
    """Tell each model's study the results of its trials that it has not been told (a trial with a run
    not recorded, its worker lost, stays untold: the next command completes it)."""
    status = dict(zip(store.runs()["run_id"], store.runs()["status"]))
    scored = validation_rows(store.metrics())
    for trial in batch:
        study = studies[trial.model]
        frozen = asked(study)[trial.number - 1]
        state = trial_status(trial, status)
        if not unfinished(frozen) or state == "missing":
            continue
        means = scored[scored["run_id"].isin(trial.run_ids)].groupby("metric")["value"].mean()
        values = [float(means.get(metric, math.nan)) for metric in tuning.metrics]
        tell(study, frozen.number, values if state == "ok" and all(map(math.isfinite, values)) else None)


def validation_rows(metrics: pd.DataFrame) -> pd.DataFrame:
    """The metric rows a trial is judged by: the validation split's. Its generation is judged by the model's
    own prior ("fid"; the Gaussian mixture's rows carry a suffix, "fid_gmm", and are not criteria)."""
    return metrics[metrics["split"] == VAL]


def trial_status(trial: Trial, status: dict[str, str]) -> str:
    states = {status.get(run_id, "missing") for run_id in trial.run_ids}
    return "missing" if "missing" in states else "failed" if states != {"ok"} else "ok"


def tuning_table(tuning: Tuning, runs: pd.DataFrame, metrics: pd.DataFrame) -> pd.DataFrame:
    """One row per trial: its values, status, validation metrics, criterion, whether it is selected and,
    when it is, which of its values are on the edge of the space."""
    status = dict(zip(runs["run_id"], runs["status"]))
    scored = validation_rows(metrics)
    order = list(tuning.spaces)
    trials = sorted(tuning.trials, key=lambda trial: (order.index(trial.model), trial.number))
    table = pd.DataFrame([trial_row(tuning, trial, status, scored) for trial in trials])
    table["criterion"] = tuning.criterion
    table["criterion_value"] = pd.concat([criterion_values(tuning, group) for _, group in table.groupby("model")])
    table["selected"] = False
    table["on_edge"] = ""
    better = LOWER if tuning.criterion == MEAN_RANK else direction(tuning.criterion)
    for model, values in table.groupby("model")["criterion_value"]:
        if values.notna().any():
            best = values.idxmin() if better == LOWER else values.idxmax()
            table.loc[best, "selected"] = True
            draw = tuning.trials_of(model)[table.at[best, "trial"] - 1].draw
            table.loc[best, "on_edge"] = "; ".join(tuning.spaces[model].on_edge(draw))
    columns = TUNING_COLUMNS[:5] + [f"val_{m}" for m in tuning.shown] + TUNING_COLUMNS[5:]
    return table[columns]


def trial_row(tuning: Tuning, trial: Trial, status: dict[str, str], scored: pd.DataFrame) -> dict:
    state = trial_status(trial, status)
    means = scored[scored["run_id"].isin(trial.run_ids)].groupby("metric")["value"].mean()
    return {"model": trial.model, "dataset": dataset_key(tuning.dataset), "trial": trial.number,
            "hparams": json.dumps(trial.values), "status": state,
            **{f"val_{m}": means.get(m, math.nan) if state == "ok" else math.nan for m in tuning.shown},
            "draw": json.dumps(trial.draw), "trials": len(tuning.trials_of(trial.model)), "budget": tuning.budget,
            "space": tuning.spaces[trial.model].describe(), "seeds": json.dumps(tuning.config["seeds"]),
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
    """A study file (aebench.run.study) of the selected values, with a header saying how they were chosen."""
    config = tuning.config
    keys = {"models": list(selected), "datasets": [tuning.dataset], "profile": config["profile"],
            "experiment": f"{config['experiment']}-tuned", "note": tuned_note(tuning)}
    keys |= {key: config[key] for key in CARRIED_OPTIONS if config.get(key) is not None}
    keys |= {key: config[key] for key in CARRIED_UNLESS_DEFAULT if config.get(key, DEFAULTS[key]) != DEFAULTS[key]}
    keys[TUNING_BUDGET] = tuning.budget  # what `run --tune-first` gives a model added to this study
    lines = [f"# {line}" for line in study_header(tuning, table)]
    lines += [f"{key} = {toml_value(value)}" for key, value in keys.items()]
    for model, trial in selected.items():
        lines += ["", f"[hparams.{toml_key(model)}]"] + [f"{field} = {toml_value(v)}" for field, v in trial.values.items()]
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
            "search spaces (Optuna TPE, seeded by model and dataset):", *space_lines(tuning),
            f"criterion: {describe_criterion(tuning.criterion)}",
            f"retrain and score on test: python cli.py run --config {path} --seeds 0,1,2,3,4"]


def describe_criterion(criterion: str) -> str:
    if criterion == MEAN_RANK:
        return f"{MEAN_RANK}, the mean of each trial's ranks in {', '.join(RANKED_METRICS)} (lower is better)"
    return f"{criterion} ({'lower' if direction(criterion) == LOWER else 'higher'} is better)"


def trial_counts(tuning: Tuning) -> list[str]:
    """Per model: how many trials, and why fewer than the budget."""
    counts = []
    for model in tuning.spaces:
        asked_here = len(tuning.trials_of(model))
        counts.append(f"{model} {asked_here}" + (f" (of {tuning.budget}: run again)" if asked_here < tuning.budget else ""))
    return counts


def space_lines(tuning: Tuning) -> list[str]:
    return [f"  {model}: {space.describe()}" for model, space in tuning.spaces.items()]


def summary_lines(outcome: TuningOutcome) -> list[str]:
    """What the command prints after the trials: the runs, the choice per model, the files."""
    tuning, grid = outcome.tuning, outcome.grid
    if grid.skipped and not (grid.done or grid.failed or grid.lost):
        lines = [f"Nothing to do: all {len(grid.skipped)} trial runs are already recorded in {tuning.folder}."]
    else:
        lines = [f"Trial runs: {len(grid.done)} done, {len(grid.failed)} failed, {len(grid.lost)} lost, "
                 f"{len(grid.skipped)} recorded earlier; results in {tuning.folder}"]
    lines += [f"Budget {tuning.budget} trials per model: " + "; ".join(trial_counts(tuning)) + "."]
    lines += ["Search spaces:", *space_lines(tuning)]
    lines += [f"Criterion on the validation split: {describe_criterion(tuning.criterion)}."]
    lines += [choice_line(model, outcome) for model in tuning.spaces]
    if outcome.figures:
        lines.append(f"Trade-off figures (validation reconstruction against FID, every trial): "
                     f"{', '.join(str(path) for path in outcome.figures)}")
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
    values = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in trial.values.items())
    line = f"  {model}: trial {trial.number} selected, {values} ({outcome.tuning.criterion} {row.criterion_value:.4g})"
    if row.on_edge:
        hints = outcome.tuning.spaces[model].widen_hints(trial.draw)
        line += (f"; on the edge: {row.on_edge}: widen the space"
                 + (f" ({', '.join(hints)}) and raise --budget" if hints else " (it cannot be widened beyond its cap)"))
    return line


def toml_key(key: str) -> str:
    """A TOML key: bare when it may be (swae, beta-vae), else quoted (a plug-in's "package.module:Class")."""
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def toml_value(value) -> str:
    """A TOML literal of a plain value (JSON's string escapes are TOML's)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(str(value))
