"""What the order of a tuning's trials costs in wall time: rounds against asking each model's next trial at once.

    python benchmarks/tuning_schedule.py TUNE_FOLDER [--workers 2]

Replays the trials of a finished (or partly finished) tune folder with the seconds each of its runs took
(runs.csv: train + eval), under the schedules the tuner has had:
- rounds: every model's trials of a round (first its STARTUP_TRIALS result-free draws, then one per model)
  start together in model order, and the next round waits for the slowest of them;
- follow, first queued first: a model's next trial joins the queue as soon as its trials are all scored;
- follow, slowest model first (today's): the same, and a free worker starts the waiting trial of the model
  whose runs so far took longest on average (a model not yet measured first), as aebench.tune.tuner ranks them.
A run that two trials share (a repeated draw) costs once. The draws are the same under every schedule
(tests/test_tuning.py), so only the wall time differs. The replay ignores the driver's own time between
runs (seconds), and every run's time is what it took in the folder, whatever ran beside it.
"""
from __future__ import annotations

import argparse
import heapq
import json
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from aebench.tune.search import STARTUP_TRIALS  # noqa: E402


def trial_costs(folder: Path) -> dict[str, list[float]]:
    """{model: [seconds of trial 1, trial 2, ...]} of the recorded trials, a shared run counted once."""
    table = pd.read_csv(folder / "tuning.csv")
    runs = pd.read_csv(folder / "runs.csv").set_index("run_id")
    seconds = (runs["train_seconds"].fillna(0) + runs["eval_seconds"].fillna(0)).to_dict()
    costs, paid = {}, set()
    for row in table.sort_values(["model", "trial"]).itertuples():
        run_ids = json.loads(row.run_ids) if str(row.run_ids).startswith("[") else str(row.run_ids).split(";")
        if any(run_id not in seconds for run_id in run_ids):
            continue  # not recorded yet: the replay covers what ran
        costs.setdefault(row.model, []).append(sum(seconds[r] for r in run_ids if r not in paid))
        paid.update(run_ids)
    return costs


def list_schedule(jobs: list[float], workers: int, start: float = 0.0) -> list[float]:
    """Each job's end when jobs start in order on the first free of `workers`, all free at `start`."""
    free = [start] * workers
    ends = []
    for seconds in jobs:
        begin = heapq.heappop(free)
        ends.append(begin + seconds)
        heapq.heappush(free, begin + seconds)
    return ends


def rounds_wall(costs: dict[str, list[float]], workers: int) -> float:
    clock, taken = 0.0, {model: 0 for model in costs}
    while any(taken[m] < len(c) for m, c in costs.items()):
        batch = []
        for model, trials in costs.items():
            count = STARTUP_TRIALS if taken[model] == 0 else 1
            batch += trials[taken[model]:taken[model] + count]
            taken[model] = min(len(trials), taken[model] + count)
        clock = max(list_schedule(batch, workers, clock))
    return clock


def follow_wall(costs: dict[str, list[float]], workers: int, slowest_first: bool) -> float:
    """Event replay: a model's next trial is queued when its running trials have all ended."""
    queue = [(model, i) for model, trials in costs.items() for i in range(min(STARTUP_TRIALS, len(trials)))]
    asked = {model: min(STARTUP_TRIALS, len(trials)) for model, trials in costs.items()}
    measured = {model: [] for model in costs}
    free, running, clock = workers, [], 0.0  # running: a heap of (end, model, trial)

    def expected(item) -> float:
        seconds = measured[item[0]]
        return sum(seconds) / len(seconds) if seconds else float("inf")

    while queue or running:
        while queue and free:
            item = max(queue, key=expected) if slowest_first else queue[0]  # max: the first of equals
            queue.remove(item)
            heapq.heappush(running, (clock + costs[item[0]][item[1]], *item))
            free -= 1
        clock, model, trial = heapq.heappop(running)
        free += 1
        measured[model].append(costs[model][trial])
        busy = any(m == model for _, m, _ in running) or any(m == model for m, _ in queue)
        if not busy and asked[model] < len(costs[model]):
            queue.append((model, asked[model]))
            asked[model] += 1
    return clock


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    costs = trial_costs(args.folder)
    print(f"{args.folder}: {sum(map(len, costs.values()))} recorded trials, {args.workers} workers, "
          f"{sum(map(sum, costs.values())) / 3600:.2f} h of runs")
    for model, trials in costs.items():
        print(f"  {model}: {len(trials)} trials, {sum(trials) / 3600:.2f} h")
    bound = max(max(map(sum, costs.values())), sum(map(sum, costs.values())) / args.workers)
    by_rounds = rounds_wall(costs, args.workers)
    for name, wall in (("rounds", by_rounds), ("follow, first queued first", follow_wall(costs, args.workers, False)),
                       ("follow, slowest model first", follow_wall(costs, args.workers, True))):
        print(f"{name}: {wall / 3600:.2f} h wall ({by_rounds / wall:.2f}x rounds' speed)")
    print(f"no schedule beats {bound / 3600:.2f} h: the slowest model's trials one after another, or all "
          f"runs spread over the workers")
    return 0


if __name__ == "__main__":
    sys.exit(main())
