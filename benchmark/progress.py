"""One overall progress line for a grid: done / running / failed, and an estimate of the time left."""
from __future__ import annotations

def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


class GridProgress:
    def __init__(self, total: int, parallelism: int, log=print):
        self.total, self.parallelism, self.log = total, max(1, parallelism), log
        self.durations: list[float] = []
        self.counts = {"ok": 0, "failed": 0, "lost": 0}

    @property
    def running(self) -> int:
        return min(self.parallelism, self.total - sum(self.counts.values()))

    def finished(self, run_id: str, status: str, detail: str, seconds: float | None = None) -> None:
        """Report one finished cell; `seconds` is what it cost (train + eval), when known."""
        if seconds is not None:
            self.durations.append(seconds)
        self.counts[status] += 1
        self.log(f"  {run_id}: {status} ({detail})")
        self.log(self.line())

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
