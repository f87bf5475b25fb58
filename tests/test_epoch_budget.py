"""benchmarks/epoch_budget.py on crafted runs whose answer is known."""
import json

import pandas as pd
from benchmark_script import load_script

from aebench.store.folder import RUN_COLUMNS

epoch_budget = load_script("epoch_budget")


def run_row(model, seed, epochs, seconds, stopped="patience", status="ok", weights_from=""):
    return {"run_id": f"{model}_mnist_s{seed}", "model": model, "dataset": "mnist", "seed": seed, "status": status,
            "train_config": json.dumps({"epochs": 500}), "epochs_run": epochs, "train_seconds": seconds,
            "stopped": stopped, "weights_from": weights_from}


def test_time_per_epoch_epochs_cap_share_and_headroom(tmp_path, capsys):
    rows = [run_row("vae", 0, 100, 300.0), run_row("vae", 1, 200, 800.0), run_row("vae", 2, 400, 1.0, status="failed"),
            run_row("swae", 0, 500, 5000.0, stopped="cap"), run_row("swae", 1, 50, 0.0, weights_from="swae_x")]
    folder = tmp_path / "exp"
    folder.mkdir()
    pd.DataFrame(rows, columns=RUN_COLUMNS).to_csv(folder / "runs.csv", index=False)
    table = epoch_budget.budget_table(epoch_budget.trained_runs([folder])).set_index("model")
    assert table.loc["vae", "runs"] == 2  # the failed run is left out
    assert table.loc["vae", "s/epoch"] == 3.5  # median of 3.0 and 4.0
    assert table.loc["vae", "epochs min/median/max"] == "100/150/200" and table.loc["vae", "headroom"] == "2.5x"
    assert table.loc["swae", "runs"] == 1  # the rescored run trained nothing
    assert table.loc["swae", "stopped by cap"] == "1 of 1" and table.loc["swae", "headroom"] == "1.0x"
    epoch_budget.main([str(folder)])
    assert "share stopped by the cap: 33%" in capsys.readouterr().out
