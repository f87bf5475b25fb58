"""One writer per experiment folder.

`run` and `tune` hold an exclusive lock on FOLDER/.writer.lock while they write there, so a second
command on the same folder stops with one line before it writes anything, instead of interleaving its
rows and config.json with the first's (each rewrites runs.csv from what it read, so one would drop the
other's runs). The lock is the operating system's (flock): it ends with the process however the
process ends, so a killed run never leaves a stale lock behind. The file itself is only the lock and
a note of who holds it.
"""
from __future__ import annotations

import os
import time
from contextlib import contextmanager
from pathlib import Path

from aebench.errors import UserError

try:
    import fcntl
except ImportError:  # Windows: no flock; runs there are not protected against a second writer
    fcntl = None

LOCK_NAME = ".writer.lock"


@contextmanager
def writing(folder: str | os.PathLike, command: str):
    """Hold the folder's writer lock for the block; UserError at once if another process holds it."""
    if fcntl is None:
        yield
        return
    path = Path(folder) / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 300, 0).decode(errors="replace").strip() or "another process"
            raise UserError(f"{folder} is being written by another command ({holder}); wait for it to end "
                            f"or stop it, or give this one another --experiment or --out") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"`{command}`, pid {os.getpid()}, since {time.strftime('%Y-%m-%d %H:%M:%S')}".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
