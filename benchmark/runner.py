"""Plans the grid (models x datasets x seeds) and runs every cell not already recorded.

plan() validates everything (names, hyperparameters, data) before any training starts, so a typo
costs nothing. run_grid() trains, evaluates and records one cell at a time; a failing cell is
recorded as failed with its reason and the grid goes on.
"""
from __future__ import annotations

import hashlib
import io
import json
import time
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timezone

import torch
from torchvision.utils import save_image

from benchmark.data import DataSplits, load_dataset
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


def plan(profile: Profile, models: list[str], datasets: list[str], seeds: list[int],
         epochs: int | None = None, overrides: dict[str, dict] | None = None) -> list[RunSpec]:
    """Resolve the grid; raises UserError for any unknown name or bad value before anything runs.

    overrides: {model_name: {field: value}} from the user, applied over the profile's settings.
    """
    overrides = overrides or {}
    for name in overrides:
        if name not in models:
            raise UserError(f"--set names model '{name}', which is not in this run ({', '.join(models)})")
    train = profile.train if epochs is None else TrainConfig(**(profile.train.to_dict() | {"epochs": epochs}))
    specs = []
    for model in models:
        cls = get_model_class(model)
        config = cls.Config.from_overrides(model_settings(profile, cls) | overrides.get(model, {}), model)
        specs += [RunSpec(model, dataset, seed, profile.name, config.to_dict(), train, profile.eval, profile.binarize)
                  for dataset in datasets for seed in seeds]
    return specs


def execute(spec: RunSpec, data: DataSplits, device: str, progress: bool = True):
    """Train and evaluate one cell; returns what the store records. Raises only on interruption."""
    started = datetime.now(timezone.utc)
    run = {"run_id": spec.run_id, "model": spec.model, "dataset": spec.dataset, "seed": spec.seed,
           "profile": spec.profile, "config_hash": spec.config_hash, "hparams": json.dumps(spec.hparams, sort_keys=True),
           "train_config": json.dumps(spec.train.to_dict()), "eval_config": json.dumps(spec.eval.to_dict()),
           "binarize": spec.binarize, "device": device, "status": "ok", "reason": "", **versions()}
    metrics, history, checkpoint, samples = [], [], None, None
    try:
        torch.manual_seed(spec.seed)
        model = build_model(spec.model, data.image_shape, spec.hparams).to(device)
        result = fit(model, data, spec.train, spec.seed, progress)
        history = result.history
        run |= {"status": result.status, "reason": result.reason, "epochs_run": result.epochs_run,
                "best_epoch": result.best_epoch, "best_val_loss": result.best_val_loss, "train_seconds": result.seconds}
        if result.status == "ok":
            eval_started = time.perf_counter()
            torch.manual_seed(spec.seed)
            metrics = [{"run_id": spec.run_id, "model": spec.model, "dataset": spec.dataset, "seed": spec.seed, **row}
                       for row in evaluate(model, data, spec.eval)]
            run["eval_seconds"] = time.perf_counter() - eval_started
            checkpoint = {"model": spec.model, "image_shape": data.image_shape, "hparams": spec.hparams,
                          "state_dict": model.state_dict(), "run_id": spec.run_id}
            samples = _sample_grid_png(model, spec.seed)
    except (KeyboardInterrupt, SystemExit):
        raise
    except UserError as e:
        run |= {"status": "failed", "reason": str(e)}
    except Exception as e:  # a bug or a numerical breakdown in one cell must not stop the grid
        run |= {"status": "failed", "reason": f"{type(e).__name__}: {e}"}
        traceback.print_exc()
    run["finished_at"] = started.isoformat(timespec="seconds")
    return run, metrics, history, checkpoint, samples


def _sample_grid_png(model, seed: int) -> bytes:
    with torch.inference_mode():
        images = model.sample(SAMPLE_GRID, torch.Generator().manual_seed(seed)).cpu()
    buffer = io.BytesIO()
    save_image(images, buffer, format="png", nrow=8)
    return buffer.getvalue()


def run_grid(specs: list[RunSpec], store: ResultsStore, device: str = "cpu", data_root=None,
             retry_failed: bool = False, progress: bool = True, log=print) -> GridOutcome:
    outcome, recorded = GridOutcome(), store.recorded()
    todo = []
    for spec in specs:
        status = recorded.get(spec.run_id)
        if status == "ok" or (status == "failed" and not retry_failed):
            outcome.skipped.append(spec.run_id)
        else:
            todo.append(spec)
    datasets = {}
    for spec in todo:  # load (and so validate) every dataset before the first run starts
        key = (spec.dataset, spec.binarize)
        if key not in datasets:
            datasets[key] = load_dataset(spec.dataset, data_root, binarize=spec.binarize).to(device)
    for i, spec in enumerate(todo, 1):
        log(f"[{i}/{len(todo)}] {spec.run_id}: training {spec.model} on {spec.dataset}, seed {spec.seed}")
        run, metrics, history, checkpoint, samples = execute(spec, datasets[(spec.dataset, spec.binarize)], device, progress)
        store.record(run, metrics, history, checkpoint, samples)
        if run["status"] == "ok":
            outcome.done.append(spec.run_id)
            summary = ", ".join(f"{m['metric']}={m['value']:.4g}" for m in metrics if m["metric"] in ("recon_sse", "knn5_acc", "linear_acc"))
            log(f"    done in {run['train_seconds']:.1f}s + {run['eval_seconds']:.1f}s eval: {summary}")
        else:
            outcome.failed.append(spec.run_id)
            log(f"    FAILED: {run['reason']}")
    return outcome
