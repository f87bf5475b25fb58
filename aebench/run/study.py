"""Experiment files: `python cli.py run --config study.toml`.

A study file lists what a grid needs (every key optional):

    models = ["swae", "vae"]          # or "swae,vae"
    datasets = ["digits"]
    seeds = [0, 1, 2]
    profile = "smoke"
    epochs = 10
    experiment = "my-study"
    out = "results"
    device = "cpu"
    data_root = "data"
    fetch = false                     # fail on a missing dataset instead of fetching it
    jobs = 2
    executor = "local"                # or "ray" (with ray_address, ray_cpus_per_run, ray_gpus_per_run)
    fid_backbone = "classifier"       # and fid_samples, fid_reference, inception_weights
    tuning_budget = 12                # trials per model its hyperparameters were tuned with (tuned.toml)
    [hparams.swae]
    K = 200

The keys, their types and defaults come from aebench.run.options (RUN_OPTIONS), which also makes the
command-line flags of `run`. Two keys are the file's own: the [hparams] tables, and tuning_budget, which
`tune` writes into tuned.toml so that `run --tune-first` gives a model added to the study the budget its
models had (`--budget` on the command line); `tune` reads it as its default --budget.

Command-line options override the file; --set overrides hparams field by field. --models may narrow
the file's grid: the left-out models' tables are then ignored, so part of a study reruns with its run
ids. The resolved configuration is saved beside the results as config.json.
"""
from __future__ import annotations

from pathlib import Path

from aebench.catalog.models import is_known_model
from aebench.errors import UserError, choices
from aebench.plumbing.tomlfile import read_toml
from aebench.run.options import DEFAULTS, OPTIONS_BY_KEY, RUN_OPTIONS, parse_options

# key -> accepted TOML types: every run option, plus the per-model hyperparameter tables and the tuning budget
TUNING_BUDGET = "tuning_budget"
KEYS = {option.key: option.kinds for option in RUN_OPTIONS} | {"hparams": (dict,), TUNING_BUDGET: (int,)}


def load_study(path: str | Path) -> dict:
    """The study file as a dict of known keys; UserError for a missing, malformed or unknown entry."""
    path = Path(path)
    data = read_toml(path, "study file")
    for key, value in data.items():
        if key not in KEYS:
            raise UserError(f"study file {path}: unknown key '{key}'; choices: {choices(KEYS)}")
        if not isinstance(value, KEYS[key]) or (isinstance(value, bool) and bool not in KEYS[key]):
            kinds = " or ".join("true or false" if t is bool else t.__name__ for t in KEYS[key])
            raise UserError(f"study file {path}: '{key}' must be {kinds}, got {value!r}")
    if data.get(TUNING_BUDGET, 1) < 1:
        raise UserError(f"study file {path}: '{TUNING_BUDGET}' must be an integer >= 1 (trials per model), "
                        f"got {data[TUNING_BUDGET]}")
    for model, fields in data.get("hparams", {}).items():
        if not isinstance(fields, dict):
            raise UserError(f"study file {path}: [hparams.{model}] must be a table of FIELD = VALUE")
    return data


def resolve(study: dict, given: dict, overrides: dict[str, dict], study_path: str | Path | None = None) -> dict:
    """Defaults, then the study file, then the options given on the command line (None = not given),
    each parsed into its type. Hyperparameters: the file's tables, then --set field by field."""
    resolved = parse_options(DEFAULTS, lambda option: option.key)
    resolved |= parse_options({k: v for k, v in study.items() if k in OPTIONS_BY_KEY},
                              lambda option: f"study file {study_path}: {option.key}")
    resolved |= parse_options(given, lambda option: option.cli_flag)
    tables = study.get("hparams", {})
    if given.get("models") is not None:  # --models narrowed the file's grid: the left-out models' tables stay unused
        tables = {model: fields for model, fields in tables.items()
                  if model in resolved["models"] or not is_known_model(model)}  # a misnamed table still fails
    hparams = {model: dict(fields) for model, fields in tables.items()}
    for model, fields in overrides.items():
        hparams.setdefault(model, {}).update(fields)
    resolved["hparams"] = hparams
    if TUNING_BUDGET in study:  # a record of the file (checked by load_study), not an option of the command
        resolved[TUNING_BUDGET] = study[TUNING_BUDGET]
    return resolved
