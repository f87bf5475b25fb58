"""`run --tune-first [--budget B]`: tune the grid's models that the study gives no hyperparameters (a new
model added to a tuned reference study), then run every model with them.

B is the study's tuning_budget, which `tune` writes into tuned.toml; --budget gives it for a study file
that does not record it (one written before the key existed, or by hand), and may not differ from a
recorded one: the fairness rules give every model the same tuning budget.

It is `aebench tune` followed by `aebench run --config tuned.toml` in one command, under the study's own
settings (profile, dataset, evaluation, precision): the new model gets what the baselines got, B trials
on the validation split, selected by the same criterion. The trials go to EXPERIMENT-tune beside the
run's folder, so that the tuning is kept and a killed command resumes it. The study's tuned models keep
their hyperparameters and are not tuned again.
"""
from __future__ import annotations

from aebench.errors import UserError
from aebench.run.study import TUNING_BUDGET
from aebench.tune.tuner import plan_tuning, run_tuning, summary_lines

TUNING_SEEDS = [0]  # the reference studies' tunes used seed 0 (studies/tune-*.toml)
# settings of the run, not of its tuning (whose budget is given apart)
DROPPED_KEYS = ("weights_from", "reuse_from", "hparams", "note", TUNING_BUDGET)


def models_to_tune(config: dict) -> list[str]:
    """The grid's models without hyperparameters in the study ([hparams.MODEL] or --set)."""
    given = config.get("hparams") or {}
    return [model for model in config.get("models", []) if model not in given]


def tuning_experiment(config: dict) -> str:
    return f"{config.get('experiment') or config['profile']}-tune"


def trials_per_model(config: dict, given: int | None) -> int:
    """The budget of --tune-first: the study's recorded tuning_budget, or --budget where it records none;
    UserError for neither, or for a --budget other than the recorded one (unequal tuning)."""
    recorded = config.get(TUNING_BUDGET)
    if recorded is None and given is None:
        raise UserError("--tune-first needs --budget B: the trials per model the reference study's models had "
                        f"(this study file records no {TUNING_BUDGET}; its note says, e.g. '4 trials per model')")
    if recorded is not None and given is not None and given != recorded:
        raise UserError(f"--budget {given}: the study's models were tuned with {recorded} trials each "
                        f"({TUNING_BUDGET} = {recorded}), and a model added to it gets the same budget; "
                        f"leave --budget out or give --budget {recorded}")
    return recorded if given is None else given


def tune_first(config: dict, budget: int, select_by: str, device: str, executor, progress: bool,
               log=print) -> dict:
    """The config with the tuned models' chosen hyperparameters added; UserError when the tuning could not
    choose (the message names its folder: the same command resumes it). budget: trials_per_model's."""
    models = models_to_tune(config)
    if not models:
        log("--tune-first: every model has hyperparameters in the study; nothing to tune")
        return config
    tuning_config = {key: value for key, value in config.items() if key not in DROPPED_KEYS}
    tuning_config.update(models=models, seeds=TUNING_SEEDS, experiment=tuning_experiment(config))
    log(f"--tune-first: tuning {', '.join(models)} ({budget} trials each, seed 0, validation split) in "
        f"{tuning_config['out']}/{tuning_config['experiment']}")
    outcome = run_tuning(plan_tuning(tuning_config, budget, select_by), device, executor, progress)
    for line in summary_lines(outcome):
        log(line)
    if not outcome.ok:
        raise UserError(f"--tune-first: the tuning in {outcome.tuning.folder} chose no hyperparameters for every "
                        "model (see above); run the same command again to complete it")
    chosen = {model: dict(trial.values) for model, trial in outcome.selected.items()}
    return {**config, "hparams": {**(config.get("hparams") or {}), **chosen}}
