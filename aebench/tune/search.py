"""The optimiser behind `aebench tune`: one Optuna study per model, TPE, driven by ask and tell.

The studies live in one journal file in the tuning folder (JOURNAL), so a killed tune finds the trials
it had asked: a trial asked but never told is completed (its runs, if recorded, are not retrained) and
then told, before anything new is asked.

Every draw is reproducible and its own: trial n of a model is asked with a fresh TPE sampler seeded by
(TUNING_SEED, model, dataset, n), so what it draws depends only on that seed and on the results of the
trials before it, never on how many ran in parallel, in which order they finished, or on a restart.
The first STARTUP_TRIALS draws are uniform over the space (in its scale); TPE models the rest on them.
A trial that failed, or whose objective is not finite, is told as failed: TPE leaves it out.
"""
from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from aebench.tune.search_space import Dimension, ModelSpace
from models.contract import IntRange

TUNING_SEED = 12  # with the model's and dataset's names and the trial's number, seeds each draw
STARTUP_TRIALS = 6  # draws at random before TPE models the results: half of the default budget
JOURNAL = "tuning-journal.log"
SPACE_ATTR = "space"  # the study's user attribute holding its ranges as last searched


def distribution(dimension: Dimension):
    domain = dimension.domain
    if not dimension.is_range:
        return CategoricalDistribution(domain.values)
    if isinstance(domain, IntRange):
        return IntDistribution(domain.low, domain.high, log=domain.log)
    return FloatDistribution(domain.low, domain.high, log=domain.log)


def study_name(model: str, setup: dict) -> str:
    """One study per model and setup (dataset, seeds, training, evaluation, objectives): a tune with
    another setup in the same folder starts its own study instead of learning from these results."""
    digest = hashlib.sha256(json.dumps(setup, sort_keys=True, default=str).encode()).hexdigest()[:10]
    return f"{model}-{digest}"


def draw_seed(model: str, dataset: str, number: int) -> int:
    text = f"{TUNING_SEED}/{model}/{dataset}/{number}"
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big")


def storage(folder: Path) -> optuna.storages.JournalStorage:
    from optuna.storages.journal import JournalFileBackend

    return optuna.storages.JournalStorage(JournalFileBackend(str(folder / JOURNAL)))


def open_study(folder: Path, name: str, directions: list[str]) -> optuna.Study:
    """The model's study, created on first use."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # trials are reported by the grid, not by Optuna
    folder.mkdir(parents=True, exist_ok=True)
    return optuna.create_study(storage=storage(folder), study_name=name, directions=directions, load_if_exists=True)


def earlier_bounds(folder: Path, name: str) -> dict:
    """The ranges an earlier tune of this study searched ({} when there is none); reads, never writes."""
    if not (folder / JOURNAL).is_file():
        return {}
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.load_study(study_name=name, storage=storage(folder))
    except KeyError:  # no study of that name in the journal
        return {}
    return study.user_attrs.get(SPACE_ATTR, {})


def asked(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """Every trial asked so far, in the order asked."""
    return sorted(study.get_trials(deepcopy=False), key=lambda trial: trial.number)


def ask(study: optuna.Study, space: ModelSpace, seed: int) -> tuple[int, dict]:
    """The next trial's number (0-based) and drawn values, by a sampler seeded for it alone. Records the
    space's ranges in the study."""
    study.set_user_attr(SPACE_ATTR, space.bounds())
    with warnings.catch_warnings():  # multivariate TPE is experimental in some Optuna versions
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=STARTUP_TRIALS, multivariate=True)
    trial = study.ask({d.name: distribution(d) for d in space.dimensions})
    return trial.number, dict(trial.params)


def tell(study: optuna.Study, number: int, values: list[float] | None) -> None:
    """The trial's objective values; None (a failed trial, a non-finite value): told as failed."""
    if values is None:
        study.tell(number, state=TrialState.FAIL)
    else:
        study.tell(number, values)


def unfinished(trial: optuna.trial.FrozenTrial) -> bool:
    return trial.state == TrialState.RUNNING
