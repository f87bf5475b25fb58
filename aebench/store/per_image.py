"""Reading the per-image values of a run: `<experiment>/per_image/<run_id>.npz`.

Contract (written by the evaluation): one key per per-image metric, named exactly as its metrics.csv row
(recon_sse, denoise_sse_s0.3, knn5_acc, ...), each a 1-D float array of that row's n values whose mean is
the row's value; images in test-set order, so that two runs of one dataset and split pair image by image.
An experiment from before per-image values has no per_image/ folder. A missing file, or one that breaks
the contract, is a reason (a str), not an exception: the report and the claims say it where the interval
would be, and go on. A file that is not readable at all is a UserError, as a corrupt CSV file is.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from aebench.store.folder import read_per_image

FOLDER = "per_image"
NO_FOLDER = "no per_image/ folder"
# A stored array's mean against the metrics.csv value: float32 storage and summation order differ.
RELATIVE_TOLERANCE, ABSOLUTE_TOLERANCE = 1e-4, 1e-7


def _count(n) -> int | None:
    try:
        return int(n)
    except (TypeError, ValueError):  # NaN or <NA>: metrics.csv gives no n, so no array can match it
        return None


class PerImageStore:
    """The per-image values of one experiment folder, each file opened once."""

    def __init__(self, folder: str | Path, run_folders: dict[str, Path] | None = None):
        self.folder = Path(folder) / FOLDER
        # a run read from another experiment (`report --against`) keeps its files in that one's folder
        self._run_folders = {run_id: Path(f) / FOLDER for run_id, f in (run_folders or {}).items()}
        self._files: dict[str, dict[str, np.ndarray] | str] = {}

    @property
    def exists(self) -> bool:
        return self.folder.is_dir() or any(f.is_dir() for f in set(self._run_folders.values()))

    def _file(self, run_id: str) -> dict[str, np.ndarray] | str:
        """The run's arrays, or the reason there are none; a file that is there but unreadable is a
        UserError (aebench.store.folder.read_per_image), as a corrupt CSV is."""
        if run_id not in self._files:
            found = read_per_image(self._run_folders.get(run_id, self.folder) / f"{run_id}.npz")
            self._files[run_id] = found if found is not None else f"{FOLDER}/{run_id}.npz missing"
        return self._files[run_id]

    def values(self, run_id: str, metric: str, n, value: float) -> np.ndarray | str:
        """The run's per-image values of `metric`, checked against its metrics.csv row (n, value);
        the reason when there are none or they break the contract."""
        if not self.exists:
            return NO_FOLDER
        stored = self._file(run_id)
        if isinstance(stored, str):
            return stored
        name = f"{FOLDER}/{run_id}.npz"
        if metric not in stored:
            return f"{name} has no {metric}"
        array = np.asarray(stored[metric], dtype=float)
        if array.ndim != 1 or len(array) != _count(n):
            return f"{name}: {metric} has shape {array.shape}, metrics.csv says n = {n}"
        if not np.isfinite(array).all():
            return f"{name}: {metric} has non-finite values"
        if not np.isclose(array.mean(), value, rtol=RELATIVE_TOLERANCE, atol=ABSOLUTE_TOLERANCE):
            return f"{name}: the mean of {metric} ({array.mean():.6g}) is not metrics.csv's {value:.6g}"
        return array
