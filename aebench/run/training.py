"""The one training loop for every model: fit(model, data, config).

Seeded shuffling, Adam (or AdamNormGrad), validation loss each epoch, early stopping with patience,
the best-validation weights restored at the end, a non-finite loss ending the run as failed, and the
per-epoch history of every loss term the model reports.

KL warm-up, the same for every model that has it (a `warmup_epochs` hyperparameter): in training
epoch e the model's warm-up weight is min(1, e / warmup_epochs) (linear from 1/W to 1, as the
VampPrior authors anneal it), and patience is not counted until the warm-up is over. Validation always
scores the full objective (weight 1), so the best epoch is chosen on the real loss. Validation draws
the same noise every epoch (a fixed seed), so two epochs differ by their weights, not by luck.

Every run says why it stopped: `patience` (early stopping ended it: converged by this rule) or `cap`
(the epoch limit did: under-trained, and the report says so).

After every epoch, fit hands an EpochProgress (epoch, best validation loss and its epoch, the patience
counter, timings) to its on_epoch callback: the grid's driver shows it (aebench.plumbing.progress). Called
without one, fit(progress=True) shows it on stdout itself.
"""
from __future__ import annotations

import contextlib
import copy
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import torch

from aebench.data.splits import DataSplits
from aebench.plumbing.precision import DEFAULT_PRECISION, PRECISIONS, training_autocast
from aebench.plumbing.progress import EpochProgress, GridProgress, StatusLine
from aebench.run.optim import OPTIMIZERS, make_optimizer
from models.contract import AutoEncoder, HyperparameterError


@dataclass
class TrainConfig:
    epochs: int = 30
    batch_size: int = 100
    lr: float = 1e-3
    optimizer: str = "adam"
    patience: int = 10  # epochs without a better validation loss before stopping
    eval_batch_size: int = 1000
    precision: str = DEFAULT_PRECISION  # fp32 | bf16: the arithmetic of the training steps (aebench.plumbing.precision)

    def __post_init__(self):
        for name in ("epochs", "batch_size", "patience", "eval_batch_size"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise HyperparameterError(f"training {name} = {getattr(self, name)!r}: must be an integer >= 1")
        if not self.lr > 0:
            raise HyperparameterError(f"training lr = {self.lr!r}: must be > 0")
        if self.optimizer not in OPTIMIZERS:
            raise HyperparameterError(f"training optimizer = {self.optimizer!r}: must be one of {', '.join(OPTIMIZERS)}")
        if self.precision not in PRECISIONS:
            raise HyperparameterError(f"training precision = {self.precision!r}: must be one of {', '.join(PRECISIONS)}")

    def to_dict(self) -> dict:
        """The settings; the default precision is left out, so that every fp32 run keeps the run id (a hash of
        this) it had before precision was an option."""
        settings = asdict(self)
        if settings["precision"] == DEFAULT_PRECISION:
            del settings["precision"]
        return settings


VALIDATION_SEED = 20210613  # the noise every validation pass draws (independent of the run's seed)


@dataclass
class FitResult:
    status: str = "ok"  # ok | failed
    reason: str = ""
    stopped: str = ""  # patience | cap ("" for a failed run)
    epochs_run: int = 0
    best_epoch: int = 0
    best_val_loss: float = math.inf
    seconds: float = 0.0
    history: list[dict] = field(default_factory=list)


class NonFiniteLoss(Exception):
    pass


@torch.no_grad()
def validation_terms(model: AutoEncoder, x: torch.Tensor, batch_size: int) -> dict[str, float]:
    """Every loss term averaged over a whole split (weighted by batch size), at full warm-up weight,
    with the same noise draws every call (the training RNG stream is left untouched)."""
    model.eval()
    totals: dict[str, float] = {}
    with torch.random.fork_rng(devices=[x.device] if x.device.type == "cuda" else []), full_weight(model):
        torch.manual_seed(VALIDATION_SEED)
        for start in range(0, len(x), batch_size):
            batch = x[start:start + batch_size]
            for name, value in model.loss(batch).items():
                totals[name] = totals.get(name, 0.0) + value.item() * len(batch)
    return {name: total / len(x) for name, total in totals.items()}


def warmup_weight(epoch: int, warmup_epochs: int) -> float:
    """Weight of the warmed-up term in training epoch `epoch` (1-based): linear up to 1 at warmup_epochs."""
    return 1.0 if warmup_epochs <= 0 else min(1.0, epoch / warmup_epochs)


@contextlib.contextmanager
def full_weight(model: AutoEncoder):
    saved, model.warmup_weight = model.warmup_weight, 1.0
    try:
        yield
    finally:
        model.warmup_weight = saved


def _train_epoch(model, data: DataSplits, optimizer, config: TrainConfig, shuffle: torch.Generator) -> dict[str, float]:
    model.train()
    n = len(data.train_x)
    autocast = training_autocast(config.precision, data.train_x.device.type)
    order = torch.randperm(n, generator=shuffle).to(data.train_x.device)
    names, totals = None, None  # every term's batch-weighted sum, kept on the device in one float64 buffer
    for start in range(0, n, config.batch_size):
        x = data.train_batch(order[start:start + config.batch_size])
        with autocast:  # the forward and loss only: the backward and the update run outside it, on float32 weights
            terms = model.loss(x)
        if not torch.isfinite(terms["loss"]):  # the step's one host sync
            raise NonFiniteLoss(f"non-finite loss ({terms['loss'].item()}) at batch {start // config.batch_size}")
        optimizer.zero_grad(set_to_none=True)
        terms["loss"].backward()
        optimizer.step()
        model.after_step()
        values = torch.stack([value.detach() for value in terms.values()])  # summed into float64 below
        if totals is None:
            names, totals = list(terms), torch.zeros(len(terms), dtype=torch.float64, device=values.device)
        totals.add_(values, alpha=len(x))
    return {name: total / n for name, total in zip(names, totals.tolist())}


def fit(model: AutoEncoder, data: DataSplits, config: TrainConfig, seed: int, progress: bool = True,
        on_epoch: Callable[[EpochProgress], None] | None = None) -> FitResult:
    """Train `model` in place; on return it holds the weights of its best validation epoch.

    on_epoch, if given, receives an EpochProgress after every epoch (labelled with the model's class
    name; a grid's cell relabels it with its run id). Without it, progress=True shows each epoch on a
    status line of stdout (in place on a terminal, else a line now and then) and False shows nothing."""
    display = GridProgress(1, 1, log=lambda *_: None, status=StatusLine()) if on_epoch is None and progress else None
    try:
        return _fit(model, data, config, seed, display.epoch if display else on_epoch)
    finally:
        if display:
            display.close()


def _fit(model: AutoEncoder, data: DataSplits, config: TrainConfig, seed: int, on_epoch) -> FitResult:
    torch.manual_seed(seed)
    shuffle = torch.Generator().manual_seed(seed)
    model.prepare(data.train_x, torch.Generator().manual_seed(seed))
    optimizer = make_optimizer(config.optimizer, model.parameters(), config.lr)
    result, best_state, stale = FitResult(), copy.deepcopy(model.state_dict()), 0
    started = time.perf_counter()
    warmup = model.warmup_epochs
    for epoch in range(1, config.epochs + 1):
        epoch_started = time.perf_counter()
        model.warmup_weight = warmup_weight(epoch, warmup)
        try:
            train = _train_epoch(model, data, optimizer, config, shuffle)
        except NonFiniteLoss as e:
            result.status, result.reason = "failed", f"epoch {epoch}: {e}"
            break
        val = validation_terms(model, data.val_x, config.eval_batch_size)
        result.epochs_run = epoch
        result.history.append({"epoch": epoch, **({"warmup_weight": model.warmup_weight} if warmup else {}),
                               **{f"train_{k}": v for k, v in train.items()},
                               **{f"val_{k}": v for k, v in val.items()}, "seconds": time.perf_counter() - epoch_started})
        if not math.isfinite(val["loss"]):
            result.status, result.reason = "failed", f"epoch {epoch}: non-finite validation loss ({val['loss']})"
            break
        if val["loss"] < result.best_val_loss:
            result.best_val_loss, result.best_epoch, stale = val["loss"], epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        elif epoch > warmup:  # patience counts only once the objective is the real one
            stale += 1
        if on_epoch is not None:
            on_epoch(EpochProgress(
                label=type(model).__name__, epoch=epoch, epochs=config.epochs, val_loss=val["loss"],
                best_val_loss=result.best_val_loss, best_epoch=result.best_epoch, stale=stale,
                patience=config.patience, warmup_epochs=warmup, epoch_seconds=result.history[-1]["seconds"],
                elapsed=time.perf_counter() - started))
        if stale >= config.patience:
            result.stopped = "patience"
            break
    else:
        result.stopped = "cap"
    model.warmup_weight = 1.0
    model.load_state_dict(best_state)
    model.eval()
    result.seconds = time.perf_counter() - started
    return result
