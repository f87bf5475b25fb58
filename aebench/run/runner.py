"""Plans the grid (models x datasets x seeds) and runs every cell not already recorded.

plan() validates everything (names, hyperparameters, data) before any training starts, so a typo
costs nothing. run_grid() hands the pending cells to an executor (aebench.run.executors), which runs
each through aebench.run.cell in this or another process, and records every result as it arrives; a
failing cell is recorded as failed with its reason and the grid goes on. Only this driver writes.
While cells train, the driver shows their epochs (aebench.plumbing.progress), whatever executor runs them.
"""
from __future__ import annotations

import dataclasses
import json
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path

from aebench.catalog.model_check import check_model_contract
from aebench.catalog.models import MODELS, builtin_models, get_model_class
from aebench.data.datasets import get_spec
from aebench.errors import UserError
from aebench.plumbing.atomic import write_atomic
from aebench.plumbing.precision import DEFAULT_PRECISION
from aebench.plumbing.progress import GridProgress, StatusLine
from aebench.plumbing.provenance import versions
from aebench.run.cell import CellResult, RunSpec, cached_dataset
from aebench.run.evaluation import check_fid_sizes
from aebench.run.executors import SerialExecutor
from aebench.run.options import eval_settings
from aebench.run.profiles import Profile, get_profile, model_settings
from aebench.store.folder import ResultsStore


@dataclass
class GridOutcome:
    done: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    skipped_failed: list[str] = field(default_factory=list)  # recorded as failed earlier, not retried
    lost: list[str] = field(default_factory=list)  # a worker died: nothing recorded, a rerun does them


def plan(profile: Profile, models: list[str], datasets: list[str], seeds: list[int],
         epochs: int | None = None, overrides: dict[str, dict] | None = None,
         eval_overrides: dict | None = None, precision: str = DEFAULT_PRECISION) -> list[RunSpec]:
    """Resolve the grid; raises UserError for any unknown name or bad value before anything runs.

    overrides: {model_name: {field: value}} from the user, applied over the profile's settings.
    eval_overrides: {EvalConfig field: value} (--fid-backbone, --fid-samples, ...) over the profile's.
    precision: the training arithmetic (aebench.plumbing.precision), part of every run id but fp32's.
    """
    for dataset in datasets:
        get_spec(dataset)
    evaluation = dataclasses.replace(profile.eval, **(eval_overrides or {}))  # validated by EvalConfig
    overrides = overrides or {}
    for name in overrides:
        if name not in models:
            raise UserError(f"hyperparameters (--set or [hparams]) name model '{name}', which is not in this run "
                            f"({', '.join(models)})")
    train = dataclasses.replace(profile.train, precision=precision, **({} if epochs is None else {"epochs": epochs}))
    specs = []
    for model in models:
        cls = get_model_class(model)
        config = cls.Config.from_overrides(model_settings(profile, cls) | overrides.get(model, {}), model)
        specs += [RunSpec(model, dataset, seed, profile.name, config.to_dict(), train, evaluation, profile.binarize)
                  for dataset in datasets for seed in seeds]
    return specs


def plan_config(config: dict) -> tuple[Profile, list[RunSpec]]:
    """The profile and grid of a resolved run configuration (aebench.run.study.resolve): what `run` trains."""
    profile = get_profile(config["profile"])
    specs = plan(profile, config.get("models", list(MODELS)), config.get("datasets", [profile.dataset]),
                 config["seeds"], config.get("epochs"), config["hparams"], eval_overrides=eval_settings(config),
                 precision=config.get("precision", DEFAULT_PRECISION))
    return profile, specs


def save_resolved_config(folder, config: dict, specs: list[RunSpec]) -> None:
    """The latest command's resolved configuration and the runs it covers, beside the results."""
    document = {"config": config, "runs": [{"run_id": s.run_id, **s.identity()} for s in specs], **versions()}
    write_atomic(Path(folder) / "config.json", json.dumps(document, indent=2, default=str).encode())


def preflight(specs: list[RunSpec], data_root, device: str) -> None:
    """Load every dataset of the grid and check each model's settings and the FID sample sizes against it,
    and a plug-in model's contract on it (aebench.catalog.model_check), so that missing data, an impossible
    setting (more pseudo-inputs than images, an Inception FID on too few images) or a broken plug-in
    fails before anything is written."""
    checked = set()
    for spec in specs:
        data = cached_dataset(spec.dataset, spec.binarize, data_root, device)
        cls = get_model_class(spec.model)
        cls.Config.from_overrides(spec.hparams, spec.model).check_data(len(data.train_x))
        if spec.model not in builtin_models() and (spec.model, spec.dataset) not in checked:  # a plug-in
            check_model_contract(spec.model, cls, spec.hparams, data)
            checked.add((spec.model, spec.dataset))
        check_fid_sizes(spec.eval, data.scored_on(spec.split))  # Inception's sample sizes, on this split


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
             retry_failed: bool = False, progress: bool = True, log=print, executor=None,
             follow=None, rank=None) -> GridOutcome:
    """Run every pending cell through `executor` (default: one after another in this process) and
    record each result as it arrives. Only this driver writes the CSV files.

    follow(spec) -> [RunSpec], when given, is asked after each cell is recorded (and for each cell
    recorded earlier) which cells come next: they join the grid at once, while the others run, so a
    tuning need not wait for a round of trials to end before asking a model's next one. rank(spec), when
    given, orders the waiting cells, highest first, each time cells join (a tuning starts its slowest
    model's trials first: that model's chain of trials is the tuning's critical path).

    log receives each finished cell's line and the grid's line. With progress, the running cells'
    epochs are shown too, on one status line of sys.stdout (aebench.plumbing.progress.GridProgress)."""
    outcome, cells, seen = GridOutcome(), deque(), {}  # seen: every cell queued, by run id
    executor = executor or SerialExecutor()
    tracker = GridProgress(0, executor.parallelism, log, status=StatusLine() if progress else None)

    def add(new: list[RunSpec]) -> None:
        """The pending ones of `new` to the grid; what follows a recorded one, at once."""
        while new:
            todo = pending(new, store, retry_failed, outcome)
            recorded = [spec for spec in new if spec not in todo]
            todo = list({spec.run_id: spec for spec in todo if spec.run_id not in seen}.values())  # two trials may share a cell
            cells.extend(todo)
            seen.update((spec.run_id, spec) for spec in todo)
            tracker.total += len(todo)
            new = [after for spec in recorded for after in follow(spec)] if follow else []
        if rank:
            waiting = sorted(cells, key=rank, reverse=True)  # stable: equal ranks keep their order
            cells.clear()
            cells.extend(waiting)
        tracker.names = short_names(list(seen.values()))

    def on_epoch(snapshot):
        tracker.parallelism = executor.parallelism  # Ray knows its size only once connected
        tracker.epoch(snapshot)

    try:
        add(list(specs))
        for spec, cell, lost_reason in executor.run(cells, data_root, device, on_epoch if progress else None):
            tracker.parallelism = executor.parallelism
            if cell is None:
                outcome.lost.append(spec.run_id)
                tracker.finished(spec.run_id, "lost", lost_reason)
                continue
            store.record(cell.run, cell.metrics, cell.history, cell.checkpoint, cell.samples, cell.per_image)
            if cell.run["status"] == "ok":
                outcome.done.append(spec.run_id)
            else:
                outcome.failed.append(spec.run_id)
            tracker.finished(spec.run_id, cell.run["status"], _summary(cell),
                             cell.run.get("train_seconds", 0) + cell.run.get("eval_seconds", 0))
            if follow or rank:
                add(follow(spec) if follow else [])
    finally:
        tracker.close()
    return outcome


def short_names(specs: list[RunSpec]) -> dict[str, str]:
    """How the status line names each running cell: model and seed ("swae s0"), with the dataset when
    the grid has several, and the run id's hash when that still leaves two alike (tuning trials)."""
    several_datasets = len({spec.dataset for spec in specs}) > 1
    names = {spec.run_id: " ".join([spec.model, *([spec.dataset] if several_datasets else []), f"s{spec.seed}"])
             for spec in specs}
    repeated = Counter(names.values())
    return {run_id: f"{name} {run_id.rsplit('_', 1)[-1]}" if repeated[name] > 1 else name
            for run_id, name in names.items()}


def _summary(cell: CellResult) -> str:
    if cell.run["status"] != "ok":
        return cell.run["reason"]
    shown = ", ".join(f"{m['metric']}={m['value']:.4g}" for m in cell.metrics
                      if m["metric"] in ("recon_sse", "knn5_acc", "linear_acc", "fid"))
    return f"{cell.run['train_seconds']:.1f}s train + {cell.run['eval_seconds']:.1f}s eval: {shown}"
