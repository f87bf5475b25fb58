"""What a user sees while a grid runs: each running cell's latest epoch, and one line for the grid.

A training run reports an EpochProgress after every epoch (aebench.run.training.fit's on_epoch). The
driver's GridProgress keeps the latest one of each running cell and shows them on one status line:
the cell's own detail when one cell runs at a time, else one entry per running cell. On a terminal
that line is rewritten in place; elsewhere (a log file, a pipe) it is written as a plain line, at once
for a cell's first epoch and then at most once every PROGRESS_INTERVAL_S seconds. A finished cell
gets its own line, followed by the grid line (finished, ok, failed, running, time left).

Workers in other processes send their snapshots through a queue (QueueReporter); the executors drain
it into GridProgress. This module imports nothing heavy: a queue's server process unpickles only
plain dicts, and training may import it.
"""
from __future__ import annotations

import math
import sys
import time
from dataclasses import asdict, dataclass

PROGRESS_INTERVAL_S = 30.0  # off a terminal: at most one status line per this many seconds


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def _span(low: float, high: float) -> str:
    low_text, high_text = _duration(low), _duration(high)
    return low_text if low_text == high_text else f"{low_text} to {high_text}"


def _loss(value: float) -> str:
    return f"{value:.2f}" if math.isfinite(value) and abs(value) >= 1 else f"{value:.4g}"


@dataclass(frozen=True)
class EpochProgress:
    """Where one training run stands after an epoch: what fit reports to its on_epoch."""

    label: str  # the run id (a grid's cell), or the model's name outside a grid
    epoch: int  # epochs done
    epochs: int  # the epoch cap (TrainConfig.epochs)
    val_loss: float  # this epoch's validation loss
    best_val_loss: float
    best_epoch: int
    stale: int  # epochs since the best that patience counted
    patience: int
    warmup_epochs: int  # 0: no KL warm-up; else patience counts from epoch warmup_epochs + 1
    epoch_seconds: float  # the last epoch
    elapsed: float  # seconds since training started

    @property
    def warming_up(self) -> bool:
        """Is the next epoch still a warm-up epoch, one that patience does not count?"""
        return self.epoch < self.warmup_epochs

    @property
    def stopping(self) -> bool:
        """Did training end with this epoch (patience ran out or the cap is reached)?"""
        return self.stale >= self.patience or self.epoch >= self.epochs

    @property
    def seconds_per_epoch(self) -> float:
        """The mean epoch time so far."""
        return self.elapsed / self.epoch if self.epoch else self.epoch_seconds

    def epochs_left(self) -> tuple[int, int]:
        """How many more epochs training can run: at least the patience not yet used up (which starts
        counting only after the warm-up), at most up to the cap."""
        if self.stopping:
            return 0, 0
        most = self.epochs - self.epoch
        earliest_stop = max(self.epoch, self.warmup_epochs) + self.patience - self.stale
        return min(most, earliest_stop - self.epoch), most

    def time_left(self) -> tuple[float, float]:
        """epochs_left() in seconds, at the mean epoch time so far."""
        low, high = self.epochs_left()
        return low * self.seconds_per_epoch, high * self.seconds_per_epoch


def format_epoch(p: EpochProgress) -> str:
    """One run's line, e.g. `swae_mnist_s0_1a2b3c4d: epoch 12/300, val 45.31 (best 44.90 at epoch 9),
    3/10 epochs without improvement, 33.1 s/epoch, 3m52s to 2h38m left`."""
    best = f"best {_loss(p.best_val_loss)} at epoch {p.best_epoch}"
    if p.stopping:
        why = "patience" if p.stale >= p.patience else "the cap"
        return f"{p.label}: trained {p.epoch}/{p.epochs} epochs, stopped by {why} ({best}), scoring"
    patience = (f"KL warm-up to epoch {p.warmup_epochs}, patience not counted yet" if p.warming_up
                else f"{p.stale}/{p.patience} epochs without improvement")
    per_epoch = p.seconds_per_epoch
    per_epoch_text = f"{per_epoch:.1f}" if per_epoch >= 1 else f"{per_epoch:.2f}"
    return (f"{p.label}: epoch {p.epoch}/{p.epochs}, val {_loss(p.val_loss)} ({best}), {patience}, "
            f"{per_epoch_text} s/epoch, {_span(*p.time_left())} left")


def format_entry(name: str, p: EpochProgress) -> str:
    """One running cell in the grid's line, e.g. `swae s0 epoch 12 (best 9, 3/10)`."""
    if p.stopping:
        return f"{name} scoring (trained {p.epoch} epochs, best {p.best_epoch})"
    counter = f"warm-up to {p.warmup_epochs}" if p.warming_up else f"{p.stale}/{p.patience}"
    return f"{name} epoch {p.epoch} (best {p.best_epoch}, {counter})"


class StatusLine:
    """One line of live status on `stream` (default: sys.stdout as it is when created).

    On a terminal (stream.isatty()) the line is rewritten in place, and hide() takes it away before
    other output. Elsewhere each show() is a plain line, written when asked to (at_once), when it is
    the first, or when `interval` seconds of `clock` have passed since the last; else dropped."""

    def __init__(self, stream=None, clock=time.monotonic, interval: float = PROGRESS_INTERVAL_S):
        self.stream = sys.stdout if stream is None else stream
        self.clock, self.interval = clock, interval
        isatty = getattr(self.stream, "isatty", None)
        try:
            self.tty = bool(isatty and isatty())
        except ValueError:  # a closed stream
            self.tty = False
        self._bar = None  # the terminal's in-place line (a tqdm status bar), while shown
        self._last: float | None = None  # when the last plain line was written

    def show(self, text: str, at_once: bool = False) -> None:
        if self.tty:
            if self._bar is None:
                from tqdm.std import tqdm  # the plain one: this line is for a terminal, never a notebook

                self._bar = tqdm(total=None, bar_format="{desc}", file=self.stream, dynamic_ncols=True,
                                 leave=False, disable=False)
            self._bar.set_description_str(text)
            return
        now = self.clock()
        if at_once or self._last is None or now - self._last >= self.interval:
            self.stream.write(text + "\n")
            self.stream.flush()
            self._last = now

    def hide(self) -> None:
        """Take the in-place line away (a terminal only); the next show() draws it again."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    close = hide


class GridProgress:
    """The driver's view of a grid: finished cells (a line each, then the grid line, through `log`)
    and, given a StatusLine, the running cells' latest epochs (epoch(), one status line).

    names maps a run id to the short name the grid's status line uses (default: the run id)."""

    def __init__(self, total: int, parallelism: int, log=print, status: StatusLine | None = None,
                 names: dict[str, str] | None = None):
        self.total, self.parallelism, self.log = total, max(1, parallelism), log
        self.status, self.names = status, names or {}
        self.durations: list[float] = []
        self.counts = {"ok": 0, "failed": 0, "lost": 0}
        self.cells: dict[str, EpochProgress] = {}  # each running cell's latest epoch, by run id
        self._ended: set[str] = set()

    @property
    def running(self) -> int:
        return min(self.parallelism, self.total - sum(self.counts.values()))

    def epoch(self, snapshot: EpochProgress) -> None:
        """A running cell's latest epoch: shown at once for its first epoch, else as the status line allows."""
        if self.status is None or snapshot.label in self._ended:
            return
        first = snapshot.label not in self.cells
        self.cells[snapshot.label] = snapshot
        self.status.show(self.status_text(), at_once=first)

    def status_text(self) -> str:
        if self.parallelism == 1 and len(self.cells) == 1:
            return format_epoch(next(iter(self.cells.values())))
        return self.running_line()

    def running_line(self) -> str:
        """Every running cell's epoch and how long until they have all finished, e.g. `running: swae s0
        epoch 12 (best 9, 3/10), wae s0 epoch 10 (best 10, 0/10); 2m10s to 1h05m left for these`."""
        entries = ", ".join(format_entry(self.names.get(label, label), p) for label, p in self.cells.items())
        spans = [p.time_left() for p in self.cells.values()]
        low, high = max((s[0] for s in spans), default=0.0), max((s[1] for s in spans), default=0.0)
        left = f"; {_span(low, high)} left for these" if high > 0 else ""
        waiting = self.total - sum(self.counts.values()) - max(self.running, len(self.cells))
        return f"running: {entries}{left}" + (f"; {waiting} waiting" if waiting > 0 else "")

    def finished(self, run_id: str, status: str, detail: str, seconds: float | None = None) -> None:
        """Report one finished cell; `seconds` is what it cost (train + eval), when known."""
        if seconds is not None:
            self.durations.append(seconds)
        self.counts[status] += 1
        self._ended.add(run_id)
        self.cells.pop(run_id, None)
        if self.status is not None:
            self.status.hide()
        self.log(f"  {run_id}: {status} ({detail})")
        self.log(self.line())
        if self.status is not None and self.status.tty and self.cells:  # off a terminal: no extra line
            self.status.show(self.status_text())

    def close(self) -> None:
        if self.status is not None:
            self.status.close()

    def time_left(self) -> float | None:
        """Mean cell time so far x cells not finished, spread over the parallel workers."""
        if not self.durations:
            return None
        remaining = self.total - sum(self.counts.values())
        return sum(self.durations) / len(self.durations) * remaining / self.parallelism

    def line(self) -> str:
        finished = sum(self.counts.values())
        left = self.time_left()
        eta = "" if left is None or finished == self.total else f", about {_duration(left)} left"
        lost = f", {self.counts['lost']} lost" if self.counts["lost"] else ""
        return (f"grid: {finished}/{self.total} finished ({self.counts['ok']} ok, {self.counts['failed']} failed{lost}), "
                f"{self.running} running{eta}")


class QueueReporter:
    """on_epoch for a worker in another process: each snapshot goes to the driver through `queue` (a
    multiprocessing Manager queue or a Ray queue) as a plain dict. Progress never blocks or fails a
    run: put_nowait, every error swallowed, and after the first error nothing more is sent."""

    def __init__(self, queue):
        self.queue, self.broken = queue, False

    def __call__(self, snapshot: EpochProgress) -> None:
        if self.broken:
            return
        try:
            self.queue.put_nowait(asdict(snapshot))
        except Exception:  # a full or closed queue, a driver gone: the run goes on without progress
            self.broken = True


def drain(queue, on_epoch) -> int:
    """Hand every snapshot waiting in `queue` (sent by QueueReporter) to on_epoch, in order; returns
    how many. An empty queue, or one that is gone, ends the drain without an error."""
    if hasattr(queue, "get_nowait_batch"):  # a Ray queue: two calls to its actor, not one per snapshot
        try:
            items = queue.get_nowait_batch(queue.qsize())
        except Exception:  # the actor has gone
            return 0
        for item in items:
            on_epoch(EpochProgress(**item))
        return len(items)
    count = 0
    while True:
        try:
            item = queue.get_nowait()
        except Exception:  # queue.Empty, or a queue whose server has gone
            return count
        on_epoch(EpochProgress(**item))
        count += 1


def end_with_parent() -> None:
    """Initializer of a queue's server process (a multiprocessing Manager): it exits when the driver
    does, even a driver killed outright, instead of lingering without a client."""
    import multiprocessing
    import os
    import threading

    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=lambda: (parent.join(), os._exit(0)), daemon=True).start()
