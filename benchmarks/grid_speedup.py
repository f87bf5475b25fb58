"""How much faster `--jobs 2` runs a grid than `--jobs 1`, and that both give the same numbers.

    python benchmarks/grid_speedup.py [--repeats 2] [--seeds 0,1,2] [--models swae,vae,...] [--jobs 2]

Runs the digits smoke grid (every model, the given seeds: 15 runs by default) with `--jobs 1` and
with `--jobs N`, alternating which goes first in each repetition, each time into a fresh temporary
folder, timing the whole command (start-up, every run, the writes). Prints each wall time, the median
per side and their ratio, the summed training and evaluation seconds of each side's runs (from
runs.csv: per-run speed, apart from start-up and idle cores), and whether every metric value of the
parallel grid equals the serial one. The machine's load average is printed: on a shared CPU every
number moves with it, so run it on a quiet machine.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent


def run_grid(jobs: int, seeds: str, models: str, folder: Path) -> float:
    command = [sys.executable, str(ROOT / "cli.py"), "run", "--profile", "smoke", "--seeds", seeds, "--models", models,
               "--jobs", str(jobs), "--out", str(folder), "--experiment", "grid", "--quiet"]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"the grid with --jobs {jobs} failed:\n{done.stderr[-2000:]}")
    return seconds


def run_seconds(folder: Path) -> float:
    runs = pd.read_csv(folder / "grid" / "runs.csv")
    return float(runs["train_seconds"].sum() + runs["eval_seconds"].sum())


def same_values(serial: Path, parallel: Path) -> bool:
    a, b = (pd.read_csv(f / "grid" / "metrics.csv").set_index(["run_id", "metric"])["value"] for f in (serial, parallel))
    return a.index.sort_values().equals(b.index.sort_values()) and a.sort_index().equals(b.sort_index())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--models", default="swae,vae,beta-vae,wae,vampprior")
    parser.add_argument("--jobs", type=int, default=2, help="the parallel side's --jobs")
    args = parser.parse_args()
    print(f"smoke grid on digits: models {args.models}, seeds {args.seeds}; --jobs 1 against --jobs {args.jobs}; "
          f"load average {' '.join(f'{v:.1f}' for v in os.getloadavg())} on {os.cpu_count()} CPUs")
    walls: dict[int, list[float]] = {1: [], args.jobs: []}
    with tempfile.TemporaryDirectory() as work:
        for repeat in range(args.repeats):
            order = (1, args.jobs) if repeat % 2 == 0 else (args.jobs, 1)
            folders = {}
            for jobs in order:
                folders[jobs] = Path(work) / f"r{repeat}-j{jobs}"
                walls[jobs].append(run_grid(jobs, args.seeds, args.models, folders[jobs]))
                print(f"  repeat {repeat + 1} --jobs {jobs}: {walls[jobs][-1]:6.1f} s wall, "
                      f"{run_seconds(folders[jobs]):6.1f} s of training and evaluation summed over runs")
            print(f"  repeat {repeat + 1}: identical metric values: {same_values(folders[1], folders[args.jobs])}")
    serial, parallel = statistics.median(walls[1]), statistics.median(walls[args.jobs])
    print(f"median wall: --jobs 1 {serial:.1f} s, --jobs {args.jobs} {parallel:.1f} s: {serial / parallel:.2f}x")


if __name__ == "__main__":
    main()
