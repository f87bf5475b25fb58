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
    jobs = 2
    executor = "local"                # or "ray" (with ray_address, ray_cpus_per_run, ray_gpus_per_run)
    fid_backbone = "classifier"       # and fid_samples, fid_reference, inception_weights
    [hparams.swae]
    K = 200

Command-line options override the file; --set overrides hparams field by field. The resolved
configuration is saved beside the results as config.json.
"""
from __future__ import annotations

from pathlib import Path

from benchmark.errors import UserError, choices
from benchmark.tomlfile import read_toml

DEFAULTS = {"profile": "quick", "seeds": "0", "out": "results", "device": "auto", "jobs": 1, "executor": "local",
            "ray_cpus_per_run": 1.0, "ray_gpus_per_run": 0.0}
# key -> accepted TOML types
KEYS = {
    "models": (list, str), "datasets": (list, str), "seeds": (list, str, int), "profile": (str,), "epochs": (int,),
    "experiment": (str,), "out": (str,), "device": (str,), "data_root": (str,), "jobs": (int,), "executor": (str,),
    "ray_address": (str,), "ray_cpus_per_run": (int, float), "ray_gpus_per_run": (int, float), "hparams": (dict,),
    "fid_backbone": (str,), "fid_samples": (int,), "fid_reference": (int,), "inception_weights": (str,),
}


def load_study(path: str | Path) -> dict:
    """The study file as a dict of known keys; UserError for a missing, malformed or unknown entry."""
    path = Path(path)
    data = read_toml(path, "study file")
    for key, value in data.items():
        if key not in KEYS:
            raise UserError(f"study file {path}: unknown key '{key}'; choices: {choices(KEYS)}")
        if not isinstance(value, KEYS[key]) or isinstance(value, bool):
            kinds = " or ".join(t.__name__ for t in KEYS[key])
            raise UserError(f"study file {path}: '{key}' must be {kinds}, got {value!r}")
    for model, fields in data.get("hparams", {}).items():
        if not isinstance(fields, dict):
            raise UserError(f"study file {path}: [hparams.{model}] must be a table of FIELD = VALUE")
    return data


def as_text_list(value) -> str:
    """Lists from TOML and comma-separated strings from the command line, as one text form."""
    return ",".join(str(v) for v in value) if isinstance(value, list) else str(value)


def resolve(study: dict, options: dict, overrides: dict[str, dict]) -> dict:
    """Defaults, then the study file, then the options given on the command line (None = not given)."""
    resolved = DEFAULTS | {k: v for k, v in study.items() if k != "hparams"}
    resolved |= {k: v for k, v in options.items() if v is not None}
    for key in ("models", "datasets", "seeds"):
        if key in resolved:
            resolved[key] = as_text_list(resolved[key])
    hparams = {model: dict(fields) for model, fields in study.get("hparams", {}).items()}
    for model, fields in overrides.items():
        hparams.setdefault(model, {}).update(fields)
    resolved["hparams"] = hparams
    return resolved
