"""benchmarks/before_after.py on two crafted reported experiments whose verdicts are known."""
import json

import pandas as pd
import pytest
from benchmark_script import load_script

from aebench.store.folder import RUN_COLUMNS

before_after = load_script("before_after")


def write_experiment(folder, means, significant_pairs, hparams):
    """A reported folder: summary.csv (one metric, fid), comparisons.csv of every pair, runs.csv."""
    folder.mkdir()
    pd.DataFrame([{"model": m, "dataset": "mnist-5k", "metric": "fid", "split": "test", "n": 1000,
                   "backbone": "classifier-x", "mean": v, "std": 1.0, "n_seeds": 3} for m, v in means.items()]
                 ).to_csv(folder / "summary.csv", index=False)
    models = list(means)
    pairs = [{"dataset": "mnist-5k", "column": "fid [classifier-x]", "model_a": a, "model_b": b, "n_pairs": 3,
              "mean_diff": means[a] - means[b], "p_holm": 0.01 if {a, b} in significant_pairs else 0.5,
              "significant": {a, b} in significant_pairs}
             for i, a in enumerate(models) for b in models[i + 1:]]
    pd.DataFrame(pairs).to_csv(folder / "comparisons.csv", index=False)
    runs = [{"run_id": f"{m}_s0", "model": m, "status": "ok", "hparams": json.dumps(hparams.get(m, {}))} for m in models]
    pd.DataFrame(runs, columns=RUN_COLUMNS).to_csv(folder / "runs.csv", index=False)


def test_verdicts_and_swae_against_the_best_baseline(tmp_path):
    write_experiment(tmp_path / "v1", {"swae": 40.0, "wae": 30.0, "vae": 50.0}, [{"swae", "wae"}, {"wae", "vae"}],
                     {"swae": {"lam": 1.0}})
    write_experiment(tmp_path / "v2", {"swae": 20.0, "wae": 30.0, "vae": 50.0}, [{"swae", "wae"}, {"swae", "vae"}],
                     {"swae": {"lam": 0.1}})
    text = before_after.before_after(tmp_path / "v1", tmp_path / "v2")
    before = next(line for line in text.splitlines() if line.startswith("| fid | before"))
    after = next(line for line in text.splitlines() if line.startswith("| fid | after"))
    assert "wae best, significantly" in before and "vs wae: +10, p_holm 0.01" in before
    assert "swae best, significantly" in after and "vs wae: -10, p_holm 0.01" in after
    assert '`{"lam": 1.0}` | `{"lam": 0.1}`' in text
    assert "| fid_gmm | after | | not measured |" in text


def test_a_tie_is_named_and_an_unreported_folder_refused(tmp_path):
    write_experiment(tmp_path / "a", {"swae": 20.0, "wae": 21.0}, [], {})
    write_experiment(tmp_path / "b", {"swae": 20.0, "wae": 21.0}, [], {})
    assert "swae best, within noise: wae" in before_after.before_after(tmp_path / "a", tmp_path / "b")
    (tmp_path / "c").mkdir()
    with pytest.raises(SystemExit, match="run `python cli.py report"):
        before_after.before_after(tmp_path / "a", tmp_path / "c")
