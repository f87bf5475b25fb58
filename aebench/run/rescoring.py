"""Scoring the trained weights of another experiment instead of training (`run --weights-from FOLDER`).

A cell of the grid is matched to the run of FOLDER that trained the same thing: same model, dataset,
seed, hyperparameters, training settings and binarisation, finished ok. The cell then loads that run's
checkpoint and only evaluates, under this command's evaluation settings: the way to add a costly
evaluation (the Inception backbone, with `--scope generation`) to a finished study without retraining
it. The rescoring run has an id of its own (the source's id is part of its identity), records the
source in runs.csv's weights_from column and carries over its training fields, with no training time.
With --scope generation it writes the sample scores of both samplers (aebench.metrics.samplers): the
loaded model's prior and the Gaussian mixture fitted on its training codes, encoded from those weights.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from aebench.errors import UserError
from aebench.run.cell import RunSpec, TrainedWeights
from aebench.store.folder import read_csv, require_runs_file

TRAINING_FIELDS = ["epochs_run", "best_epoch", "best_val_loss", "stopped"]
MATCHED_COLUMNS = ["run_id", "model", "dataset", "seed", "status", "hparams", "train_config", "binarize"]


def _training_key(model: str, dataset: str, seed: int, hparams: dict, train: dict, binarize: bool) -> str:
    """What a run's weights depend on, as one comparable string."""
    return json.dumps([model, dataset, int(seed), hparams, train, bool(binarize)], sort_keys=True)


def _source_runs(source: Path) -> dict[str, dict]:
    """The finished runs of the source experiment, by training key."""
    runs = read_csv(require_runs_file(source, "--weights-from"), MATCHED_COLUMNS)
    found = {}
    for row in runs[runs["status"] == "ok"].to_dict("records"):
        key = _training_key(row["model"], row["dataset"], row["seed"], json.loads(row["hparams"]),
                            json.loads(row["train_config"]), str(row["binarize"]) == "True")
        found[key] = row
    return found


def _training_fields(row: dict) -> dict:
    return {name: row[name] for name in TRAINING_FIELDS if name in row and row[name] == row[name]}  # NaN: absent


def attach_trained_weights(specs: list[RunSpec], source: str | Path, out_folder: str | Path) -> list[RunSpec]:
    """The specs, each pointed at the checkpoint of its trained run in `source`; UserError, before
    anything runs, for a cell that has no such run or whose checkpoint is missing."""
    source = Path(source)
    if source.resolve() == Path(out_folder).resolve():
        raise UserError(f"--weights-from {source}: that is this command's own experiment folder; "
                        "rescored runs go to another experiment (--experiment NAME)")
    runs = _source_runs(source)
    attached = []
    for spec in specs:
        row = runs.get(_training_key(spec.model, spec.dataset_id, spec.seed, spec.hparams, spec.train.to_dict(),
                                     spec.binarize))
        if row is None:
            raise UserError(f"--weights-from {source}: no finished run of {spec.model} on {spec.dataset}, seed "
                            f"{spec.seed}, with this command's hyperparameters and training settings; that "
                            f"folder has {len(runs)} finished runs (give the same profile, study file or --set)")
        checkpoint = source / "checkpoints" / f"{row['run_id']}.pt"
        if not checkpoint.is_file():
            raise UserError(f"--weights-from {source}: the checkpoint of {row['run_id']} is missing ({checkpoint}); "
                            "checkpoints are not committed with results: run that study here first to recreate them")
        trained = TrainedWeights(row["run_id"], str(checkpoint), _training_fields(row))
        attached.append(dataclasses.replace(spec, trained=trained))
    return attached
