"""Per-image intervals in the report (summary.csv's ci_low, ci_high, ci_note) and the per_image/ contract
(aebench/store/per_image.py), on hand-made experiments whose per-image values are known."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_report import write_experiment

from aebench.errors import UserError
from aebench.report.writer import SUMMARY_COLUMNS, write_report
from aebench.store.per_image import PerImageStore

N = 360  # test_report.write_experiment's n of every metric but FID
SEEDS = (0, 1, 2)
CORRECT = {"swae": 330, "vae": 300}  # kNN correct images of N, on every seed


def per_image_values(model: str, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed + 10 * len(model))
    recon = rng.gamma(2.0, 1.0, N) + (0.0 if model == "swae" else 3.0)
    correct = np.zeros(N)
    correct[rng.permutation(N)[:CORRECT[model]]] = 1.0
    return {"recon_sse": recon, "knn5_acc": correct}


def experiment(folder, with_per_image: bool = True):
    arrays = {(m, s): per_image_values(m, s) for m in CORRECT for s in SEEDS}
    values = {key: {metric: float(a.mean()) for metric, a in found.items()} | {"fid@clf": 10.0 + key[1]}
              for key, found in arrays.items()}
    write_experiment(folder, values, set())
    if with_per_image:
        (folder / "per_image").mkdir()
        for (model, seed), found in arrays.items():
            np.savez(folder / "per_image" / f"{model}_digits_s{seed}_abcd1234.npz", **found)
    return folder


def summary_row(summary: pd.DataFrame, model: str, metric: str) -> pd.Series:
    return summary[(summary["model"] == model) & (summary["metric"] == metric)].iloc[0]


def test_summary_gives_per_image_metrics_an_interval_beside_the_seed_std(tmp_path):
    folder = experiment(tmp_path / "exp")
    write_report(folder, figures=False)
    summary = pd.read_csv(folder / "summary.csv", keep_default_na=False, na_values=[""])
    columns = list(summary.columns)
    assert columns[columns.index("std") + 1:columns.index("std") + 4] == ["ci_low", "ci_high", "ci_note"]
    for model in CORRECT:
        for metric in ("recon_sse", "knn5_acc"):
            row = summary_row(summary, model, metric)
            assert row["ci_low"] < row["mean"] < row["ci_high"] and row["ci_note"].startswith("95% bootstrap interval")
        knn = summary_row(summary, model, "knn5_acc")  # the same correct count on every seed: image noise only
        p = CORRECT[model] / N
        # the seeds' means agree exactly, so resampling seeds adds nothing: the binomial width over 3 N images
        assert knn["ci_high"] - knn["ci_low"] == pytest.approx(2 * 1.96 * np.sqrt(p * (1 - p) / (N * 3)), rel=0.1)
    fid = summary_row(summary, "swae", "fid")
    assert np.isnan(fid["ci_low"]) and np.isnan(fid["ci_high"]) and pd.isna(fid["ci_note"])  # not per image
    assert "summary.csv gives each per-image metric" in (folder / "report.md").read_text()


def test_a_missing_file_leaves_that_row_without_interval_and_says_why(tmp_path):
    folder = experiment(tmp_path / "exp")
    (folder / "per_image" / "vae_digits_s1_abcd1234.npz").unlink()
    write_report(folder, figures=False)
    summary = pd.read_csv(folder / "summary.csv", keep_default_na=False, na_values=[""])
    vae = summary_row(summary, "vae", "recon_sse")
    assert np.isnan(vae["ci_low"]) and vae["ci_note"] == "per_image/vae_digits_s1_abcd1234.npz missing"
    assert not np.isnan(summary_row(summary, "swae", "recon_sse")["ci_low"])
    assert "2 have none; ci_note says why" in (folder / "report.md").read_text()


def test_an_experiment_without_per_image_keeps_protocol_v1_columns_and_the_report_says_why(tmp_path):
    folder = experiment(tmp_path / "exp", with_per_image=False)
    write_report(folder, figures=False)
    assert list(pd.read_csv(folder / "summary.csv").columns) == SUMMARY_COLUMNS
    assert "No per_image/ folder in this experiment" in (folder / "report.md").read_text()


def test_the_store_checks_every_array_against_its_metrics_row(tmp_path):
    (tmp_path / "per_image").mkdir()
    values = np.array([1.0, 2.0, 3.0, 6.0])
    np.savez(tmp_path / "per_image" / "r.npz", recon_sse=values, knn5_acc=np.ones((2, 2)))
    (tmp_path / "per_image" / "broken.npz").write_bytes(b"not a zip")
    store = PerImageStore(tmp_path)
    assert np.array_equal(store.values("r", "recon_sse", 4, 3.0), values)
    assert store.values("r", "recon_sse", 5, 3.0) == "per_image/r.npz: recon_sse has shape (4,), metrics.csv says n = 5"
    assert store.values("r", "recon_sse", pd.NA, 3.0).endswith("metrics.csv says n = <NA>")
    assert store.values("r", "recon_sse", 4, 3.1) == "per_image/r.npz: the mean of recon_sse (3) is not metrics.csv's 3.1"
    assert store.values("r", "knn5_acc", 4, 1.0).startswith("per_image/r.npz: knn5_acc has shape (2, 2)")
    assert store.values("r", "denoise_sse_s0.3", 4, 1.0) == "per_image/r.npz has no denoise_sse_s0.3"
    assert store.values("other", "recon_sse", 4, 3.0) == "per_image/other.npz missing"
    with pytest.raises(UserError, match="broken.npz is not a readable per-image file"):
        store.values("broken", "recon_sse", 4, 3.0)
    assert PerImageStore(tmp_path / "old").values("r", "recon_sse", 4, 3.0) == "no per_image/ folder"
