import os

import numpy as np
import pandas as pd
import pytest

from aebench.errors import UserError
from aebench.plumbing.atomic import write_atomic, write_cache
from aebench.store.folder import METRIC_COLUMNS, RUN_COLUMNS, ResultsStore


def run_row(run_id, status="ok"):
    return {"run_id": run_id, "model": "vae", "dataset": "digits", "seed": 0, "status": status}


def metric_rows(run_id, value):
    return [{"run_id": run_id, "model": "vae", "dataset": "digits", "seed": 0, "metric": "knn5_acc",
             "value": value, "split": "test", "n": 360, "backbone": ""}]


def test_record_writes_every_file(tmp_path):
    store = ResultsStore(tmp_path / "exp")
    store.record(run_row("a"), metric_rows("a", 0.9), [{"epoch": 1, "train_loss": 2.0}], b"weights", b"\x89PNG")
    assert list(store.runs().columns) == RUN_COLUMNS and list(store.metrics().columns) == METRIC_COLUMNS
    assert store.recorded() == {"a": "ok"}
    assert store.metrics()["value"].tolist() == [0.9]
    assert (tmp_path / "exp/history/a.csv").exists() and (tmp_path / "exp/checkpoints/a.pt").read_bytes() == b"weights"
    assert (tmp_path / "exp/samples/a.png").read_bytes() == b"\x89PNG"


def test_recording_a_run_again_replaces_its_rows_and_keeps_others(tmp_path):
    store = ResultsStore(tmp_path)
    store.record(run_row("a", "failed"), [], [], None, None)
    store.record(run_row("b"), metric_rows("b", 0.5), [], None, None)
    store.record(run_row("a"), metric_rows("a", 0.9), [], None, None)
    assert store.recorded() == {"b": "ok", "a": "ok"}
    metrics = store.metrics()
    assert sorted(zip(metrics["run_id"], metrics["value"])) == [("a", 0.9), ("b", 0.5)]


def test_per_image_values_are_stored_beside_the_run_and_replaced_with_it(tmp_path):
    store = ResultsStore(tmp_path)
    values = {"knn5_acc": np.array([1.0, 0.0, 1.0]), "recon_sse": np.array([2.5, 0.125, 7.0])}
    store.record(run_row("a"), metric_rows("a", 2 / 3), [], None, None, values)
    path = tmp_path / "per_image" / "a.npz"
    with np.load(path) as stored:  # the file format others read: numpy's npz, one array per metric
        assert sorted(stored.files) == ["knn5_acc", "recon_sse"]
        np.testing.assert_array_equal(stored["recon_sse"], values["recon_sse"])
    read = store.per_image("a")
    assert sorted(read) == sorted(values) and all(np.array_equal(read[k], values[k]) for k in values)
    assert store.per_image("b") is None  # a run without per-image values, or no such run
    store.record(run_row("a", "failed"), [], [], None, None)  # a rerun without them leaves none behind
    assert store.per_image("a") is None and not path.exists()


def test_an_unreadable_per_image_file_is_a_clear_error(tmp_path):
    store = ResultsStore(tmp_path)
    (tmp_path / "per_image").mkdir()
    (tmp_path / "per_image" / "a.npz").write_bytes(b"not a zip file")
    with pytest.raises(UserError, match="a.npz is not a readable per-image file"):
        store.per_image("a")


def test_metrics_left_by_a_killed_run_are_replaced_not_duplicated(tmp_path):
    store = ResultsStore(tmp_path)
    # a process killed between the metrics write and the runs write leaves orphan metric rows
    write_atomic(store.metrics_path, pd.DataFrame(metric_rows("a", 0.1)).to_csv(index=False).encode())
    assert store.recorded() == {}
    store.record(run_row("a"), metric_rows("a", 0.9), [], None, None)
    assert store.metrics()["value"].tolist() == [0.9]


def test_failed_atomic_write_leaves_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "f.csv"
    path.write_text("old")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        write_atomic(path, b"new")
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["f.csv"]


def test_corrupt_csv_is_a_clear_error(tmp_path):
    store = ResultsStore(tmp_path)
    store.runs_path.write_text("just,some\nother,columns\n")
    with pytest.raises(UserError, match="lacks the columns"):
        store.recorded()


def test_unwritable_folder_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(UserError, match="not writable"):
        ResultsStore(blocker / "exp")


def test_an_unwritable_cache_is_a_warning_not_an_error(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.warns(UserWarning, match="could not cache the thing"):
        write_cache(tmp_path / "file" / "sub" / "cache.bin", b"data", "the thing")
    write_cache(tmp_path / "cache" / "ok.bin", b"data", "the thing")
    assert (tmp_path / "cache" / "ok.bin").read_bytes() == b"data"
