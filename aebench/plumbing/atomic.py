"""Files that are never torn: written to a temporary file beside them, then renamed in one step; and
cache entries that parallel workers compute once."""
from __future__ import annotations

import os
import tempfile
import warnings
from contextlib import contextmanager
from pathlib import Path


def cache_root() -> Path:
    """Where the suite caches what does not change between runs: $AEBENCH_CACHE or ~/.cache/aebench."""
    return Path(os.environ.get("AEBENCH_CACHE") or Path.home() / ".cache" / "aebench").expanduser()


def write_atomic(path: Path, data: bytes) -> None:
    """Replace `path` with `data` in one rename (temporary file in the same folder, fsynced)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_cache(path: Path, data: bytes, what: str) -> None:
    """write_atomic for a cache file: an unwritable cache is a warning, since it only costs time later."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, data)
    except OSError as e:
        warnings.warn(f"could not cache {what} in {path.parent} ({e.strerror})")


@contextmanager
def computed_once(path: Path):
    """Hold the advisory lock (flock) of cache file `path` for the block: the parallel workers of a grid
    that all need one missing entry wait for the first to compute it, then read it, instead of each
    computing it. Where there is no flock, or the folder is unwritable, no lock (only time is lost)."""
    try:
        import fcntl

        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(path.with_name(path.name + ".lock"), "a")
    except (ImportError, OSError):
        yield
        return
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        handle.close()  # closing releases the lock
