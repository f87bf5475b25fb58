"""The reproducibility promise where only the kernels differ: the same weights scored with another thread
count, or with oneDNN off (which swaps the convolution kernels, as another CPU would), agree with the
first scoring within REPRODUCIBLE_RTOL on every metric - the FID classifier trained afresh included."""
from __future__ import annotations

import pytest
import torch
from reproducibility import assert_reproduced

from aebench.catalog.models import build_model
from aebench.features.backbones import forget_loaded_backbones
from aebench.run.evaluation import EvalConfig, evaluate
from aebench.run.training import TrainConfig, fit

EVALUATION = EvalConfig(fid_samples=400)


@pytest.fixture(scope="module")
def conv_vae(digits):
    """A conv-net VAE (convolutions are where kernels round differently) trained one epoch on digits."""
    torch.manual_seed(0)
    model = build_model("vae", digits.image_shape, {"latent_dim": 4, "arch": "conv"})
    fit(model, digits, TrainConfig(epochs=1, batch_size=64), seed=0, progress=False)
    return model.eval()


def on_kernels(threads: int, onednn: bool, call):
    """call() with this many threads and oneDNN on or off, then the process's settings back."""
    saved = torch.get_num_threads(), torch.backends.mkldnn.enabled
    torch.set_num_threads(threads)
    torch.backends.mkldnn.enabled = onednn
    try:
        return call()
    finally:
        torch.set_num_threads(saved[0])
        torch.backends.mkldnn.enabled = saved[1]


def scores(model, data, threads: int, onednn: bool) -> dict[str, float]:
    forget_loaded_backbones()  # the classifier comes from this test's cache (or is trained into it)
    try:
        rows = on_kernels(threads, onednn, lambda: evaluate(model, data, EVALUATION, log=lambda *_: None))
    finally:
        forget_loaded_backbones()
    return {f"{row['metric']}|{row['backbone']}": row["value"] for row in rows}


def test_switching_onednn_off_changes_the_rounding_of_convolutions(conv_vae, digits):
    # what makes the next test worth having: these really are other kernels, not the same sums
    first = on_kernels(1, True, lambda: conv_vae.reconstruct(digits.test_x).detach())
    other = on_kernels(1, False, lambda: conv_vae.reconstruct(digits.test_x).detach())
    assert not torch.equal(first, other) and torch.allclose(first, other, rtol=1e-4, atol=1e-6)


def test_the_same_weights_score_within_the_promise_on_other_kernels(conv_vae, digits, tmp_path, monkeypatch):
    monkeypatch.setenv("AEBENCH_CACHE", str(tmp_path / "first"))
    first = scores(conv_vae, digits, threads=1, onednn=True)
    assert {"fid|classifier-digits-v4", "kid|classifier-digits-v4", "recon_sse|", "knn5_acc|"} <= set(first)
    # two threads: the classifier is read from the cache, the reference features are computed anew
    assert_reproduced(scores(conv_vae, digits, threads=2, onednn=True), first)
    # oneDNN off and two threads in a new cache: the FID classifier is trained again on these kernels
    monkeypatch.setenv("AEBENCH_CACHE", str(tmp_path / "other"))
    assert_reproduced(scores(conv_vae, digits, threads=2, onednn=False), first)
