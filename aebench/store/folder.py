"""The results store of one experiment folder: tidy CSV files, written so they are never torn.

Every write goes to a temporary file that replaces the real one in a single rename, so a process
killed at any moment leaves each file either as it was or as it should be. runs.csv is written
last: a run counts as done only once its row is there, and a rerun replaces any partial leftovers.

per_image/<run_id>.npz (numpy's savez_compressed) holds the per-image metrics' values of a run, image
by image in the order of the scored split: one 1-D float array per metric, named as in metrics.csv,
of that row's length n and with that row's value as its mean (aebench.run.evaluation.Scores). A bootstrap
over test images pairs two runs on the same split image by image through it.
"""
from __future__ import annotations

import io
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from aebench.errors import UserError
from aebench.plumbing.atomic import write_atomic

RUN_COLUMNS = [
    "run_id", "model", "dataset", "seed", "profile", "status", "reason", "config_hash", "hparams",
    "train_config", "eval_config", "binarize", "epochs_run", "best_epoch", "best_val_loss", "stopped",
    "train_seconds", "eval_seconds", "device", "torch_version", "python_version", "git_commit", "finished_at",
    "weights_from",  # a run that scored another run's weights (run --weights-from): that run's id
    "precision",  # the training arithmetic, fp32 or bf16 (aebench.plumbing.precision); empty in older files: fp32
]
# Columns added after results were first written: an older runs.csv lacks them and reads as empty there.
ADDED_RUN_COLUMNS = ["stopped", "weights_from", "precision"]
METRIC_COLUMNS = ["run_id", "model", "dataset", "seed", "metric", "value", "split", "n", "backbone"]


def require_runs_file(folder: Path, option: str) -> Path:
    """An experiment folder named by an option (--weights-from, --reuse-from): its runs.csv, or UserError."""
    path = Path(folder) / "runs.csv"
    if not path.is_file():
        raise UserError(f"{option} {folder}: no runs.csv there; give the folder of an experiment with finished runs")
    return path


def rescored(runs: pd.DataFrame) -> pd.Series:
    """Which runs scored another run's weights instead of training (runs.csv weights_from set)."""
    if "weights_from" not in runs:
        return pd.Series(False, index=runs.index)
    return runs["weights_from"].notna() & (runs["weights_from"].astype(str) != "")


def csv_bytes(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


def read_csv(path: Path, columns: list[str]) -> pd.DataFrame:
    """A results CSV, or an empty frame with the right columns; UserError if it is not readable."""
    if not path.exists():
        return pd.DataFrame(columns=columns)
    try:
        frame = pd.read_csv(path, keep_default_na=False, na_values=[""])
    except Exception as e:  # pandas raises several types for a corrupt file
        raise UserError(f"{path} is not a readable CSV file ({type(e).__name__}: {e}); move it away to start afresh")
    missing = set(columns) - set(frame.columns)
    if missing:
        raise UserError(f"{path} lacks the columns {', '.join(sorted(missing))}; move it away to start afresh")
    return frame


def per_image_bytes(values: dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **{name: np.asarray(array, dtype=np.float64) for name, array in values.items()})
    return buffer.getvalue()


def read_per_image(path: Path) -> dict[str, np.ndarray] | None:
    """The arrays of a per_image file, or None where there is none; UserError if it is not readable."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as stored:
            return {name: stored[name] for name in stored.files}
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        raise UserError(f"{path} is not a readable per-image file ({type(e).__name__}: {e}); "
                        "rerun its run to write it again") from None


class ResultsStore:
    """metrics.csv, runs.csv, history/, checkpoints/, samples/, per_image/ of one experiment folder."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        try:
            for sub in ("history", "checkpoints", "samples"):
                (self.folder / sub).mkdir(parents=True, exist_ok=True)
            probe = tempfile.NamedTemporaryFile(dir=self.folder, prefix=".write-test.")
            probe.close()
        except OSError as e:
            raise UserError(f"output folder {self.folder} is not writable ({e.strerror}); choose another with --out") from None
        self.runs_path, self.metrics_path = self.folder / "runs.csv", self.folder / "metrics.csv"

    def runs(self) -> pd.DataFrame:
        runs = read_csv(self.runs_path, [c for c in RUN_COLUMNS if c not in ADDED_RUN_COLUMNS])
        for column in ADDED_RUN_COLUMNS:
            if column not in runs:
                runs[column] = pd.NA
        return runs

    def metrics(self) -> pd.DataFrame:
        return read_csv(self.metrics_path, METRIC_COLUMNS)

    def recorded(self) -> dict[str, str]:
        """run_id -> status of every run recorded so far."""
        runs = self.runs()
        return dict(zip(runs["run_id"], runs["status"]))

    def per_image(self, run_id: str) -> dict[str, np.ndarray] | None:
        """{metric: one value per scored image} of a run, or None where it has none (failed, generation
        scope, or written before per-image values existed)."""
        return read_per_image(self._per_image_path(run_id))

    def _per_image_path(self, run_id: str) -> Path:
        return self.folder / "per_image" / f"{run_id}.npz"

    def record(self, run: dict, metrics: list[dict], history: list[dict], checkpoint: bytes | None, samples: bytes | None,
               per_image: dict[str, np.ndarray] | None = None):
        """Store one finished (or failed) run; any earlier rows and per-image values of the same run_id are
        replaced (a run recorded without per-image values leaves none behind)."""
        run_id = run["run_id"]
        if per_image:
            self._per_image_path(run_id).parent.mkdir(exist_ok=True)
            write_atomic(self._per_image_path(run_id), per_image_bytes(per_image))
        else:
            self._per_image_path(run_id).unlink(missing_ok=True)
        if history:
            write_atomic(self.folder / "history" / f"{run_id}.csv", csv_bytes(pd.DataFrame(history)))
        if checkpoint is not None:  # bytes in aebench.store.checkpoints' format
            write_atomic(self.folder / "checkpoints" / f"{run_id}.pt", checkpoint)
        if samples is not None:
            write_atomic(self.folder / "samples" / f"{run_id}.png", samples)
        self._replace_rows(self.metrics_path, self.metrics(), pd.DataFrame(metrics, columns=METRIC_COLUMNS), run_id)
        self._replace_rows(self.runs_path, self.runs(), pd.DataFrame([run], columns=RUN_COLUMNS), run_id)

    @staticmethod
    def _replace_rows(path: Path, existing: pd.DataFrame, new: pd.DataFrame, run_id: str) -> None:
        kept = existing[existing["run_id"] != run_id]
        frames = [f for f in (kept, new) if len(f)]
        combined = pd.concat(frames, ignore_index=True) if frames else new
        write_atomic(path, csv_bytes(combined))
