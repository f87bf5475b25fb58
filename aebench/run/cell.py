"""The worker side of a grid: what one cell is (RunSpec) and what runs it, in any process.

train_and_evaluate(spec, data, device) trains and scores one cell on data already in memory;
run_in_worker(spec, data_root, device) is the entry point a worker process or Ray task calls: it
loads the dataset once per process and then calls train_and_evaluate. Neither writes a file: the
CellResult travels back to the driver (aebench.run.runner), which alone records it. Both take an
on_epoch callback that receives each epoch's EpochProgress, labelled with the cell's run id: the
driver's display in this process, a aebench.plumbing.progress.QueueReporter in another.
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import re
import time
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
from threadpoolctl import threadpool_limits
from torchvision.utils import save_image

from aebench.catalog.models import build_model
from aebench.data.datasets import dataset_key, load_dataset
from aebench.data.splits import DataSplits
from aebench.errors import UserError
from aebench.plumbing.precision import check_precision
from aebench.plumbing.provenance import versions
from aebench.run.evaluation import EvalConfig, evaluate
from aebench.run.training import TrainConfig, fit
from aebench.store.checkpoints import checkpoint_bytes, load_model

SAMPLE_GRID = 64


@dataclass(frozen=True)
class TrainedWeights:
    """A finished run of another experiment whose weights a cell scores instead of training (run
    --weights-from): which run, its checkpoint file, and its training fields of runs.csv, carried over."""

    run_id: str
    checkpoint: str
    training: dict  # epochs_run, best_epoch, best_val_loss, stopped


@dataclass
class RunSpec:
    """One cell of the grid, fully resolved: everything that determines its numbers."""

    model: str
    dataset: str
    seed: int
    profile: str
    hparams: dict
    train: TrainConfig
    eval: EvalConfig
    binarize: bool
    split: str = "test"  # the split it is scored on: "test", or "val" for a tuning trial (aebench.tune.tuner)
    trained: TrainedWeights | None = None  # set: score these weights, train nothing

    def identity(self) -> dict:
        identity = {"model": self.model, "dataset": self.dataset_id, "seed": self.seed, "hparams": self.hparams,
                    "train": self.train.to_dict(), "eval": self.eval.to_dict(), "binarize": self.binarize}
        if self.split != "test":  # so that a trial never shares a run_id with a test run, and test runs keep theirs
            identity["split"] = self.split
        if self.trained:  # the same weights scored again make a run of their own
            identity["weights_from"] = self.trained.run_id
        return identity

    @property
    def dataset_id(self) -> str:
        """The dataset's name in run ids and results: its registered name, or for a user's own images
        (npz:PATH, folder:PATH) a name made from their content, so that ids do not depend on the path."""
        return dataset_key(self.dataset)

    @property
    def config_hash(self) -> str:
        """Hash of everything that determines the result (not the profile's name, device or paths)."""
        return hashlib.sha256(json.dumps(self.identity(), sort_keys=True).encode()).hexdigest()[:12]

    @property
    def run_id(self) -> str:
        # A plug-in named package.module:Class gives a run id that is also a portable file name.
        model = re.sub(r"[^A-Za-z0-9_.-]", "-", self.model)
        return f"{model}_{self.dataset_id}_s{self.seed}_{self.config_hash[:8]}"


@dataclass
class CellResult:
    """What one cell produces; the driver alone writes it to the store."""

    run: dict
    metrics: list[dict] = field(default_factory=list)
    history: list[dict] = field(default_factory=list)
    checkpoint: bytes | None = None  # aebench.store.checkpoints format
    samples: bytes | None = None  # PNG
    # The per-image metrics' values image by image, in the scored split's order (evaluation.Scores): the
    # driver stores them as per_image/<run_id>.npz for a bootstrap over test images. Empty: none.
    per_image: dict[str, np.ndarray] = field(default_factory=dict)


def train_and_evaluate(spec: RunSpec, data: DataSplits, device: str, on_epoch=None) -> CellResult:
    """Train and evaluate one cell. Failures become a failed run with its reason; only an
    interruption propagates. on_epoch, if given, receives each epoch's EpochProgress (its label the
    run id): the cell itself never prints progress, the driver shows it."""
    cell = CellResult(run={
        "run_id": spec.run_id, "model": spec.model, "dataset": spec.dataset_id, "seed": spec.seed,
        "profile": spec.profile, "config_hash": spec.config_hash, "hparams": json.dumps(spec.hparams, sort_keys=True),
        "train_config": json.dumps(spec.train.to_dict()), "eval_config": json.dumps(spec.eval.to_dict()),
        "binarize": spec.binarize, "device": device, "precision": spec.train.precision, "status": "ok", "reason": "",
        **versions()})
    try:
        torch.manual_seed(spec.seed)
        model = _trained_model(spec, data, device, cell, on_epoch)
        if cell.run["status"] == "ok":
            eval_started = time.perf_counter()
            torch.manual_seed(spec.seed)
            rows = evaluate(model, data.scored_on(spec.split), spec.eval)
            cell.metrics = [{"run_id": spec.run_id, "model": spec.model, "dataset": spec.dataset_id, "seed": spec.seed,
                             **row} for row in rows]
            cell.per_image = getattr(rows, "per_image", {})  # evaluation.Scores; a plain list of rows has none
            cell.run["eval_seconds"] = time.perf_counter() - eval_started
            cell.checkpoint = checkpoint_bytes(model, spec.model, spec.hparams, spec.run_id)
            cell.samples = _sample_grid_png(model, spec.seed)
    except (KeyboardInterrupt, SystemExit):
        raise
    except UserError as e:
        cell.run |= {"status": "failed", "reason": str(e)}
    except Exception as e:  # a bug or a numerical breakdown in one cell must not stop the grid
        cell.run |= {"status": "failed", "reason": f"{type(e).__name__}: {e}"}
        traceback.print_exc()
    cell.run["finished_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return cell


def _trained_model(spec: RunSpec, data: DataSplits, device: str, cell: CellResult, on_epoch):
    """The model to score: trained here (its history and training fields go into the cell), or the
    weights of spec.trained loaded, with that run's training fields and no training time of its own."""
    if spec.trained:
        cell.run |= {**spec.trained.training, "train_seconds": 0.0, "weights_from": spec.trained.run_id}
        return load_model(Path(spec.trained.checkpoint)).to(device)
    check_precision(spec.train.precision, device)  # this worker's hardware: a Ray cluster's machines may differ
    model = build_model(spec.model, data.image_shape, spec.hparams).to(device)

    def report(snapshot):
        on_epoch(dataclasses.replace(snapshot, label=spec.run_id))

    result = fit(model, data, spec.train, spec.seed, progress=False, on_epoch=report if on_epoch else None)
    cell.history = result.history
    cell.run |= {"status": result.status, "reason": result.reason, "epochs_run": result.epochs_run,
                 "best_epoch": result.best_epoch, "best_val_loss": result.best_val_loss, "stopped": result.stopped,
                 "train_seconds": result.seconds}
    return model


def _sample_grid_png(model, seed: int) -> bytes:
    with torch.inference_mode():
        images = model.sample(SAMPLE_GRID, torch.Generator().manual_seed(seed)).cpu()
    buffer = io.BytesIO()
    save_image(images, buffer, format="png", nrow=8)
    return buffer.getvalue()


_DATA_CACHE: dict[tuple, DataSplits] = {}


def cached_dataset(name: str, binarize: bool, data_root, device: str) -> DataSplits:
    """Each process loads a dataset once and reuses it for every cell it runs."""
    key = (name, binarize, str(data_root), device)
    if key not in _DATA_CACHE:
        _DATA_CACHE[key] = load_dataset(name, data_root, binarize=binarize).to(device)
    return _DATA_CACHE[key]


def limit_threads(threads: int) -> None:
    """Every thread pool of this process to `threads`: torch's, and those of numpy's BLAS and OpenMP
    (scikit-learn's probes, KID, k-means), which otherwise start one thread per core in each worker.
    Two workers on two cores then run four BLAS threads: measured here, a 360x64 float64 product took
    8 ms instead of 0.24 ms while another process kept the other core busy."""
    torch.set_num_threads(threads)
    threadpool_limits(threads)  # applied now, kept for the life of the process


def run_in_worker(spec: RunSpec, data_root, device: str, threads: int | None = None, on_epoch=None) -> CellResult:
    """Entry point of a worker (this process, a local process or a Ray task): everything it needs
    travels in the call, on_epoch too (in another process a picklable QueueReporter)."""
    if threads:
        limit_threads(threads)
    data = cached_dataset(spec.dataset, spec.binarize, data_root, device)
    return train_and_evaluate(spec, data, device, on_epoch)
