"""`run --tune-first --budget B`: tune the grid's models that the study gives no hyperparameters (a new
model added to a tuned reference study), then run every model with them.

It is `aebench tune` followed by `aebench run --config tuned.toml` in one command, under the study's own
settings (profile, dataset, evaluation, precision): the new model gets what the baselines got, B trials
on the validation split, selected by the same criterion. The trials go to EXPERIMENT-tune beside the
run's folder, so that the tuning is kept and a killed command resumes it. The study's tuned models keep
their hyperparameters and are not tuned again.
"""
from __future__ import annotations

from aebench.errors import UserError
from aebench.tune.tuner import plan_tuning, run_tuning, summary_lines

TUNING_SEEDS = [0]  # the reference studies' tunes used seed 0 (studies/tune-*.toml)
DROPPED_KEYS = ("weights_from", "reuse_from", "hparams", "note")  # settings of the run, not of its tuning


def models_to_tune(config: dict) -> list[str]:
    """The grid's models without hyperparameters in the study ([hparams.MODEL] or --set)."""
    given = config.get("hparams") or {}
    return [model for model in config.get("models", []) if model not in given]


def tuning_experiment(config: dict) -> str:
    return f"{config.get('experiment') or config['profile']}-tune"


def tune_first(config: dict, budget: int | None, select_by: str, device: str, executor, progress: bool,
               log=print) -> dict:
    """The config with the tuned models' chosen hyperparameters added; UserError when the tuning could not
    choose (the message names its folder: the same command resumes it)."""
    if budget is None:
        raise UserError("--tune-first needs --budget B: the trials per model the reference study's models had "
                        "(its note says, e.g. '4 trials per model')")
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
