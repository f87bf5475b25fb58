"""Plans the grid (models x datasets x seeds) and runs every cell not already recorded.

plan() validates everything (names, hyperparameters, data) before any training starts, so a typo
costs nothing. run_grid() trains, evaluates and records one cell at a time; a failing cell is
recorded as failed with its reason and the grid goes on.
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import time
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timezone

import torch
from torchvision.utils import save_image

from benchmark.data import DataSplits, get_spec, load_dataset
from benchmark.errors import UserError
from benchmark.evaluation import EvalConfig, evaluate
from benchmark.profiles import Profile, model_settings
from benchmark.provenance import versions
from benchmark.results import ResultsStore
from benchmark.training import TrainConfig, fit
from models.registry import build_model, get_model_class

SAMPLE_GRID = 64


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

    def identity(self) -> dict:
        return {"model": self.model, "dataset": self.dataset, "seed": self.seed, "hparams": self.hparams,
                "train": self.train.to_dict(), "eval": self.eval.to_dict(), "binarize": self.binarize}

    @property
    def config_hash(self) -> str:
        """Hash of everything that determines the result (not the profile's name, device or paths)."""
        return hashlib.sha256(json.dumps(self.identity(), sort_keys=True).encode()).hexdigest()[:12]

    @property
    def run_id(self) -> str:
        return f"{self.model}_{self.dataset}_s{self.seed}_{self.config_hash[:8]}"


@dataclass
class GridOutcome:
    done: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    skipped_failed: list[str] = field(default_factory=list)  # recorded as failed earlier, not retried
    lost: list[str] = field(default_factory=list)  # a worker died: nothing recorded, a rerun does them


def plan(profile: Profile, models: list[str], datasets: list[str], seeds: list[int],
         epochs: int | None = None, overrides: dict[str, dict] | None = None,
         eval_overrides: dict | None = None) -> list[RunSpec]:
    """Resolve the grid; raises UserError for any unknown name or bad value before anything runs.

    overrides: {model_name: {field: value}} from the user, applied over the profile's settings.
    eval_overrides: {EvalConfig field: value} (--fid-backbone, --fid-samples, ...) over the profile's.
    """
    for dataset in datasets:
        get_spec(dataset)
    evaluation = dataclasses.replace(profile.eval, **(eval_overrides or {}))  # validated by EvalConfig
    overrides = overrides or {}
    for name in overrides:
        if name not in models:
            raise UserError(f"--set names model '{name}', which is not in this run ({', '.join(models)})")
    train = profile.train if epochs is None else TrainConfig(**(profile.train.to_dict() | {"epochs": epochs}))
    specs = []
    for model in models:
        cls = get_model_class(model)
        config = cls.Config.from_overrides(model_settings(profile, cls) | overrides.get(model, {}), model)
        specs += [RunSpec(model, dataset, seed, profile.name, config.to_dict(), train, evaluation, profile.binarize)
                  for dataset in datasets for seed in seeds]
    return specs


@dataclass
class CellResult:
    """What one cell produces; the driver alone writes it to the store."""

    run: dict
    metrics: list[dict] = field(default_factory=list)
    history: list[dict] = field(default_factory=list)
    checkpoint: dict | None = None
    samples: bytes | None = None


def execute(spec: RunSpec, data: DataSplits, device: str, progress: bool = True) -> CellResult:
    """Train and evaluate one cell. Failures become a failed run with its reason; only an
    interruption propagates."""
    started = datetime.now(timezone.utc)
    cell = CellResult(run={
        "run_id": spec.run_id, "model": spec.model, "dataset": spec.dataset, "seed": spec.seed,
        "profile": spec.profile, "config_hash": spec.config_hash, "hparams": json.dumps(spec.hparams, sort_keys=True),
        "train_config": json.dumps(spec.train.to_dict()), "eval_config": json.dumps(spec.eval.to_dict()),
        "binarize": spec.binarize, "device": device, "status": "ok", "reason": "", **versions()})
    try:
        torch.manual_seed(spec.seed)
        model = build_model(spec.model, data.image_shape, spec.hparams).to(device)
        result = fit(model, data, spec.train, spec.seed, progress)
        cell.history = result.history
        cell.run |= {"status": result.status, "reason": result.reason, "epochs_run": result.epochs_run,
                     "best_epoch": result.best_epoch, "best_val_loss": result.best_val_loss,
                     "train_seconds": result.seconds}
        if result.status == "ok":
            eval_started = time.perf_counter()
            torch.manual_seed(spec.seed)
            cell.metrics = [{"run_id": spec.run_id, "model": spec.model, "dataset": spec.dataset, "seed": spec.seed,
                             **row} for row in evaluate(model, data, spec.eval)]
            cell.run["eval_seconds"] = time.perf_counter() - eval_started
            cell.checkpoint = {"model": spec.model, "image_shape": data.image_shape, "hparams": spec.hparams,
                               "state_dict": model.state_dict(), "run_id": spec.run_id}
            cell.samples = _sample_grid_png(model, spec.seed)
    except (KeyboardInterrupt, SystemExit):
        raise
    except UserError as e:
        cell.run |= {"status": "failed", "reason": str(e)}
    except Exception as e:  # a bug or a numerical breakdown in one cell must not stop the grid
        cell.run |= {"status": "failed", "reason": f"{type(e).__name__}: {e}"}
        traceback.print_exc()
    cell.run["finished_at"] = started.isoformat(timespec="seconds")
    return cell


def _sample_grid_png(model, seed: int) -> bytes:
    with torch.inference_mode():
        images = model.sample(SAMPLE_GRID, torch.Generator().manual_seed(seed)).cpu()
    buffer = io.BytesIO()
    save_image(images, buffer, format="png", nrow=8)
    return buffer.getvalue()


def save_resolved_config(folder, config: dict, specs: list[RunSpec]) -> None:
    """The latest command's resolved configuration and the runs it covers, beside the results."""
    from pathlib import Path

    from benchmark.results import write_atomic

    document = {"config": config, "runs": [{"run_id": s.run_id, **s.identity()} for s in specs], **versions()}
    write_atomic(Path(folder) / "config.json", json.dumps(document, indent=2, default=str).encode())


_DATA_CACHE: dict[tuple, DataSplits] = {}


def cached_dataset(name: str, binarize: bool, data_root, device: str) -> DataSplits:
    """Each process loads a dataset once and reuses it for every cell it runs."""
    key = (name, binarize, str(data_root), device)
    if key not in _DATA_CACHE:
        _DATA_CACHE[key] = load_dataset(name, data_root, binarize=binarize).to(device)
    return _DATA_CACHE[key]


def run_cell(spec: RunSpec, data_root, device: str, progress: bool = False, threads: int | None = None) -> CellResult:
    """Entry point of a worker (local process or Ray task): everything it needs travels in the call."""
    if threads:
        torch.set_num_threads(threads)
    return execute(spec, cached_dataset(spec.dataset, spec.binarize, data_root, device), device, progress)


def preflight(specs: list[RunSpec], data_root, device: str) -> None:
    """Load every dataset of the grid and check each model's settings against it, so that missing
    data or an impossible setting (more pseudo-inputs than images) fails before anything is written."""
    for spec in specs:
        data = cached_dataset(spec.dataset, spec.binarize, data_root, device)
        get_model_class(spec.model).Config.from_overrides(spec.hparams, spec.model).check_data(len(data.train_x))


def pending(specs: list[RunSpec], store: ResultsStore, retry_failed: bool, outcome: GridOutcome) -> list[RunSpec]:
    """The cells not yet recorded (and the failed ones, when asked to retry)."""
    recorded, todo = store.recorded(), []
    for spec in specs:
        status = recorded.get(spec.run_id)
        if status == "ok" or (status == "failed" and not retry_failed):
            outcome.skipped.append(spec.run_id)
            if status == "failed":
                outcome.skipped_failed.append(spec.run_id)
        else:
            todo.append(spec)
    return todo


def run_grid(specs: list[RunSpec], store: ResultsStore, device: str = "cpu", data_root=None,
             retry_failed: bool = False, progress: bool = True, log=print, executor=None) -> GridOutcome:
    """Run every pending cell through `executor` (default: one after another in this process) and
    record each result as it arrives. Only this driver writes the CSV files."""
    from benchmark.executors import SerialExecutor
    from benchmark.progress import GridProgress

    outcome = GridOutcome()
    todo = pending(specs, store, retry_failed, outcome)
    executor = executor or SerialExecutor()
    tracker = GridProgress(len(todo), executor.parallelism, log)
    for spec, cell, lost_reason in executor.run(todo, data_root, device, progress and executor.parallelism == 1):
        tracker.parallelism = executor.parallelism  # Ray knows its size only once connected
        if cell is None:
            outcome.lost.append(spec.run_id)
            tracker.finished(spec.run_id, "lost", lost_reason)
            continue
        store.record(cell.run, cell.metrics, cell.history, cell.checkpoint, cell.samples)
        if cell.run["status"] == "ok":
            outcome.done.append(spec.run_id)
        else:
            outcome.failed.append(spec.run_id)
        tracker.finished(spec.run_id, cell.run["status"], _summary(cell),
                         cell.run.get("train_seconds", 0) + cell.run.get("eval_seconds", 0))
    return outcome


def _summary(cell: CellResult) -> str:
    if cell.run["status"] != "ok":
        return cell.run["reason"]
    shown = ", ".join(f"{m['metric']}={m['value']:.4g}" for m in cell.metrics
                      if m["metric"] in ("recon_sse", "knn5_acc", "linear_acc", "fid"))
    return f"{cell.run['train_seconds']:.1f}s train + {cell.run['eval_seconds']:.1f}s eval: {shown}"
