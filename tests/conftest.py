"""Shared fixtures: small data and a quiet, fast environment for every test; and PixelIdentity, an
autoencoder whose answers are known."""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from aebench.data.datasets import load_dataset
from models.contract import AutoEncoder, Hyperparameters

TEST_THREADS = int(os.environ.get("AEBENCH_TEST_THREADS", "1"))  # README, "Reproducibility"


@pytest.fixture(scope="session")
def digits():
    data = load_dataset("digits")
    assert data.image_shape == (1, 8, 8) and len(data.test_x) == 360  # every test below relies on it
    return data


@pytest.fixture(scope="session", autouse=True)
def _session_cache(tmp_path_factory):
    """One cache (FID classifier, reference statistics) for the whole session, never the user's, set
    for the whole session: session- and module-scoped fixtures (a model trained once for a file's
    tests) run before any function-scoped fixture, so an environment set only per test would leave
    them reading and filling the user's own cache (~/.cache/aebench) with whatever thread count the
    process had."""
    cache = tmp_path_factory.mktemp("aebench-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AEBENCH_DATA", str(tmp_path_factory.mktemp("no-data-root")))
        patch.setenv("AEBENCH_CACHE", str(cache))
        patch.setenv("TORCH_HOME", str(cache / "torch"))  # no real Inception weights: auto = classifier
        # The test models are tiny: one thread is fastest, and CLI subprocesses inherit it.
        # AEBENCH_TEST_THREADS and AEBENCH_TEST_ONEDNN=0 rerun the suite on other kernels (README).
        patch.setenv("OMP_NUM_THREADS", str(TEST_THREADS))
        torch.set_num_threads(TEST_THREADS)
        torch.backends.mkldnn.enabled = os.environ.get("AEBENCH_TEST_ONEDNN", "1") != "0"
        yield cache


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path, _session_cache):
    # No test may read a user's data root or write into the checkout's results/.
    monkeypatch.setenv("AEBENCH_DATA", str(tmp_path / "data"))
    torch.set_num_threads(TEST_THREADS)  # whatever a test before set


# Shared by the evaluation's tests (test_fid, test_per_image): an autoencoder whose answers are known.
class PixelIdentity(AutoEncoder):
    """A perfect autoencoder: the latent is the image itself; samples are uniform noise."""

    def __init__(self, image_shape):
        super().__init__(image_shape, Hyperparameters(latent_dim=int(np.prod(image_shape))))
        self.unused = torch.nn.Parameter(torch.zeros(1))

    def encode(self, x):
        return x.flatten(1)

    def decode(self, z):
        return z.view(len(z), *self.image_shape)

    def sample(self, n, generator=None):
        return torch.rand((n, *self.image_shape), generator=generator)
