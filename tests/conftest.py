"""Shared fixtures: small data and a quiet, fast environment for every test."""
from __future__ import annotations

import pytest
import torch

from benchmark.data import load_dataset


@pytest.fixture(scope="session")
def digits():
    data = load_dataset("digits")
    assert data.image_shape == (1, 8, 8) and len(data.test_x) == 360  # every test below relies on it
    return data


@pytest.fixture(scope="session")
def _session_cache(tmp_path_factory):
    """One cache (FID classifier, reference statistics) for the whole session, never the user's."""
    return tmp_path_factory.mktemp("aebench-cache")


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path, _session_cache):
    # No test may read a user's data root or write into the checkout's results/.
    monkeypatch.setenv("AEBENCH_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("AEBENCH_CACHE", str(_session_cache))
    monkeypatch.setenv("TORCH_HOME", str(_session_cache / "torch"))  # no real Inception weights: auto = classifier
    # The test models are tiny: one thread is fastest, and CLI subprocesses inherit it.
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    torch.set_num_threads(1)
