"""Where a number came from: code version and library versions, stored with every run."""
from __future__ import annotations

import functools
import math
import os
import platform
import subprocess
from pathlib import Path

import torch

PROJECT_ROOT = Path(__file__).resolve().parents[2]  # aebench/plumbing/provenance.py -> the checkout

# The reproducibility promise (README, "Reproducibility"). The same command on the same machine with the
# same thread count gives bit-identical numbers. Where only the kernels differ (another thread count,
# --jobs value, Ray, oneDNN on or off, another CPU), the same weights score within this relative
# tolerance on every metric: float32 rounding differs there in the last bits (about 1e-7).
REPRODUCIBLE_RTOL = 1e-6


# A spread is held to the scale of what it spreads: kid_std, the std of KID over subsets, is a difference of
# nearly equal numbers when samples are alike (measured: a one-epoch VAE's kid_std moved 2.6e-5 relative with
# oneDNN off while its KID, 250 000 times larger, moved under 1e-7), so it is compared within rtol x |kid|.
SPREAD_OF = {"kid_std": "kid"}


def reproduced(a: float, b: float, rtol: float = REPRODUCIBLE_RTOL, scale: float = 0.0) -> bool:
    """a and b agree as the promise says: within rtol of their size, or of `scale` when that is larger (the
    value a spread is measured on; SPREAD_OF). Both NaN counts as agreeing: the same diverged run."""
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return math.isclose(a, b, rel_tol=rtol, abs_tol=rtol * abs(scale))


@functools.lru_cache(maxsize=1)
def git_commit() -> str:
    """HEAD of the suite's checkout, suffixed '-dirty' when the tracked code has uncommitted changes.
    Tracked files under results/ are left out: they are what runs write (a study resumed into
    results/reference rewrites its config.json first), not what computes the numbers."""
    def git(*args):
        return subprocess.run(["git", *args], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=10)

    try:
        head = git("rev-parse", "HEAD")
        if head.returncode != 0:
            return "unknown"
        dirty = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)results").stdout.strip()
        return head.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def versions() -> dict[str, str]:
    return {"torch_version": torch.__version__, "python_version": platform.python_version(), "git_commit": git_commit()}


def load_average() -> str:
    """The machine's 1, 5 and 15 minute load when a benchmark measured: a timing under load is not a speed."""
    try:
        return " ".join(f"{v:.1f}" for v in os.getloadavg()) + f" on {os.cpu_count()} CPUs"
    except OSError:
        return "unknown"
