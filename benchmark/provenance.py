"""Where a number came from: code version and library versions, stored with every run."""
from __future__ import annotations

import functools
import platform
import subprocess
from pathlib import Path

import torch

PROJECT_ROOT = Path(__file__).resolve().parent.parent


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
