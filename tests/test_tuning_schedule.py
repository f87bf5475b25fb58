"""benchmarks/tuning_schedule.py on trial times whose schedules are worked out by hand."""
import json

import pandas as pd
from benchmark_script import load_script

schedule = load_script("tuning_schedule")


def test_rounds_wait_for_the_slow_model_and_following_does_not(monkeypatch):
    monkeypatch.setattr(schedule, "STARTUP_TRIALS", 1)
    costs = {"fast": [1.0, 1.0, 1.0, 1.0], "slow": [3.0, 3.0]}
    # rounds: (fast 0-1, slow 0-3), (fast 3-4, slow 3-6), (fast 6-7), (fast 7-8)
    assert schedule.rounds_wall(costs, 2) == 8.0
    # follow: fast's trials 1, 2, 3 and 4 end at 1, 2, 3 and 4 beside slow's 0-3, then slow 3-6
    assert schedule.follow_wall(costs, 2, slowest_first=False) == 6.0
    assert schedule.follow_wall(costs, 2, slowest_first=True) == 6.0
    assert schedule.rounds_wall(costs, 1) == schedule.follow_wall(costs, 1, True) == 10.0  # one worker: the sum


def test_trial_costs_count_a_shared_run_once_and_skip_unrecorded_trials(tmp_path):
    runs = pd.DataFrame({"run_id": ["a", "b"], "train_seconds": [10.0, 20.0], "eval_seconds": [1.0, 2.0]})
    trials = pd.DataFrame({"model": ["vae", "vae", "vae", "wae"], "trial": [1, 2, 3, 1],
                           "run_ids": [json.dumps(["a"]), json.dumps(["a"]), json.dumps(["b"]), json.dumps(["c"])]})
    runs.to_csv(tmp_path / "runs.csv", index=False)
    trials.to_csv(tmp_path / "tuning.csv", index=False)
    assert schedule.trial_costs(tmp_path) == {"vae": [11.0, 0.0, 22.0]}
