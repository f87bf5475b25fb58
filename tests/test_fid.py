"""FID: the formula on known answers, the Inception path without the network, the classifier backbone
and its cache, reference statistics caching, and the FID rows of evaluate()."""
from __future__ import annotations

import socket
import threading
import time

import numpy as np
import pytest
import scipy.linalg
import torch
import torchvision
from conftest import PixelIdentity

import aebench.features.backbones as backbones
from aebench.errors import UserError
from aebench.features.backbones import (
    INCEPTION_FILE,
    Backbone,
    InceptionBackbone,
    choose_backbone,
    get_backbone,
    require_inception_weights,
)
from aebench.metrics.fid import (
    FeatureStats,
    cached_features,
    feature_statistics,
    features_path,
    fid_of_features,
    frechet_distance,
    reference_statistics,
)
from aebench.plumbing.atomic import computed_once
from aebench.run.evaluation import EvalConfig, evaluate


@pytest.fixture(autouse=True)
def _fresh_backbones():
    backbones.forget_loaded_backbones()
    yield
    backbones.forget_loaded_backbones()


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory):
    """One cache folder for this module, so the digits classifier is trained once here, not per test."""
    return tmp_path_factory.mktemp("aebench-cache")


@pytest.fixture
def cache(shared_cache, monkeypatch):
    monkeypatch.setenv("AEBENCH_CACHE", str(shared_cache))
    return shared_cache


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the network was touched")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)


@pytest.fixture
def empty_torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path / "torch"


@pytest.fixture
def random_inception_weights(empty_torch_home, monkeypatch):
    """pytorch-fid's Inception architecture with random weights, saved where the real file would be."""
    import pytorch_fid.inception as fid_inception

    with monkeypatch.context() as patch:  # build the architecture without loading (or fetching) anything
        patch.setattr(fid_inception, "load_state_dict_from_url", lambda *a, **k: {})
        patch.setattr(torchvision.models.Inception3, "load_state_dict", lambda self, *a, **k: None, raising=False)
        torch.manual_seed(0)
        state = fid_inception.fid_inception_v3().state_dict()
    path = empty_torch_home / "hub" / "checkpoints" / INCEPTION_FILE
    path.parent.mkdir(parents=True)
    torch.save(state, path)
    return path


# ---------------------------------------------------------------- the formula


def direct_fid(a: np.ndarray, b: np.ndarray) -> float:
    mu_a, mu_b = a.mean(0), b.mean(0)
    s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(s_a @ s_b).real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(s_a) + np.trace(s_b) - 2 * np.trace(root))


def test_fid_of_a_feature_set_against_itself_is_zero():
    a = np.random.default_rng(0).normal(size=(1000, 16))
    assert abs(fid_of_features(a, a)) < 1e-6


def test_fid_of_a_mean_shift_is_the_squared_shift_and_grows_with_it():
    a = np.random.default_rng(1).normal(size=(1000, 16))
    direction = np.ones(16) / 4.0  # unit length
    values = [fid_of_features(a, a + shift * direction) for shift in (0.5, 1.0, 2.0, 4.0)]
    assert values == pytest.approx([0.25, 1.0, 4.0, 16.0], rel=1e-5)  # same covariance: only |mu_a - mu_b|^2 is left
    assert values == sorted(values)


def test_fid_matches_a_direct_scipy_computation_of_the_formula():
    rng = np.random.default_rng(2)
    a = rng.normal(size=(800, 12))
    b = rng.normal(size=(600, 12)) @ rng.normal(size=(12, 12)) * 0.5 + 0.3
    assert fid_of_features(a, b) == pytest.approx(direct_fid(a, b), rel=1e-6)
    assert fid_of_features(a, b) > 1


def test_fid_of_diagonal_gaussians_has_its_closed_form():
    mu_a, mu_b, var_a, var_b = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0]), np.array([1.0, 4.0, 9.0]), np.array([4.0, 4.0, 1.0])
    expected = ((mu_a - mu_b) ** 2).sum() + ((np.sqrt(var_a) - np.sqrt(var_b)) ** 2).sum()  # 5 + 5
    got = frechet_distance(FeatureStats(mu_a, np.diag(var_a), 10), FeatureStats(mu_b, np.diag(var_b), 10))
    assert got == pytest.approx(expected, rel=1e-9) and expected == 10


def test_fid_of_non_finite_features_is_nan():
    a = np.random.default_rng(3).normal(size=(50, 4))
    bad = a.copy()
    bad[0, 0] = np.nan
    assert np.isnan(fid_of_features(a, bad))


def test_feature_statistics_need_two_vectors():
    with pytest.raises(ValueError, match="at least 2"):
        feature_statistics(np.zeros((1, 4)))


# ---------------------------------------------------------------- reference statistics cache


class PixelBackbone(Backbone):
    """The flattened pixels as features: no network, so the cache logic is tested alone."""

    name, fingerprint, batch_size = "pixels", "pixels-v1", 100
    net = torch.nn.Flatten()

    def forward(self, x):
        return self.net(x)


def test_reference_statistics_are_computed_once_then_read_from_the_cache(cache, monkeypatch):
    images = torch.rand(40, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    backbone = PixelBackbone()
    first = reference_statistics(backbone, images, "toy", "test")
    files = list((cache / "features").glob("toy_test_pixels_n40_*.npz"))
    assert len(files) == 1

    def no_features(x):
        raise AssertionError("features recomputed despite the cache")

    monkeypatch.setattr(backbone, "features", no_features)
    second = reference_statistics(backbone, images, "toy", "test")
    assert np.array_equal(first.mu, second.mu) and np.array_equal(first.sigma, second.sigma) and second.n == 40
    with pytest.raises(AssertionError, match="recomputed"):  # other images: another key, never stale numbers
        reference_statistics(backbone, images.flip(0)[:39], "toy", "test")


def test_a_worker_waits_for_the_reference_features_another_is_computing_instead_of_computing_them(cache):
    images = torch.rand(30, 1, 4, 4, generator=torch.Generator().manual_seed(1))
    backbone, computed, returned = PixelBackbone(), [], []
    original = backbone.features
    backbone.features = lambda x: computed.append(len(x)) or original(x)
    path = features_path("toy-wait", "test", backbone, images)
    with computed_once(path):  # another worker is computing them
        waiting = threading.Thread(target=lambda: returned.append(cached_features(backbone, images, "toy-wait", "test")))
        waiting.start()
        time.sleep(0.5)
        assert waiting.is_alive() and not computed
        np.savez(path, features=np.full((30, 16), 7, dtype=np.float32))  # what that worker wrote
    waiting.join(timeout=60)
    assert not computed and np.array_equal(returned[0], np.full((30, 16), 7.0))


# ---------------------------------------------------------------- inception


def test_inception_path_gives_2048_features_from_local_weights_without_the_network(random_inception_weights, no_network):
    backbone = InceptionBackbone(require_inception_weights())
    grey = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    features = backbone.features(grey)
    assert features.shape == (3, 2048) and np.isfinite(features).all()
    # grey is fed as three equal channels
    assert np.allclose(features, backbone.features(grey.repeat(1, 3, 1, 1)), atol=1e-5)
    # random weights are not pytorch-fid's: their FID values must never share a column with the real ones
    assert backbone.name.startswith("inception-pool3-sha") and backbone.name != "inception-pool3"


def test_inception_weights_from_a_user_path(random_inception_weights, tmp_path, no_network, monkeypatch):
    elsewhere = tmp_path / "my-weights.pth"
    random_inception_weights.rename(elsewhere)
    with pytest.raises(UserError, match="not found"):
        require_inception_weights()
    assert require_inception_weights(str(elsewhere)) == elsewhere


def test_auto_picks_inception_only_for_large_images_with_weights_present(random_inception_weights):
    assert choose_backbone("auto", (1, 28, 28)) == "inception"
    assert choose_backbone("auto", (1, 8, 8)) == "classifier"  # 8x8 upsampled to 299: not worth it
    assert choose_backbone("classifier", (1, 28, 28)) == "classifier"
    assert choose_backbone("inception", (1, 8, 8)) == "inception"


def test_missing_inception_weights_fall_back_or_are_a_clear_error(empty_torch_home, no_network):
    assert choose_backbone("auto", (1, 28, 28)) == "classifier"
    with pytest.raises(UserError, match=f"{INCEPTION_FILE}.*--fid-backbone classifier"):
        require_inception_weights()
    with pytest.raises(UserError, match="Inception weights"):
        EvalConfig(fid_backbone="inception")  # caught when the grid is planned, before any training
    with pytest.raises(UserError, match="choices: auto, inception, classifier"):
        choose_backbone("resnet", (1, 28, 28))


def test_unloadable_inception_weights_are_a_user_error(empty_torch_home, no_network):
    path = empty_torch_home / "hub" / "checkpoints" / INCEPTION_FILE
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="do not load"):
        InceptionBackbone(path)


# ---------------------------------------------------------------- classifier


def test_classifier_backbone_is_accurate_on_digits(cache, digits):
    backbone = get_backbone("classifier", digits)
    assert backbone.name == f"classifier-digits-v{backbones.CLASSIFIER_VERSION}"
    assert backbone.accuracy > 0.95
    assert backbone.features(digits.test_x[:5]).shape == (5, backbones.CLASSIFIER_FEATURES)
    assert (cache / "classifiers" / f"classifier-digits-v{backbones.CLASSIFIER_VERSION}-s0.pt").is_file()


@pytest.mark.slow
def test_the_classifier_is_the_same_whatever_the_thread_count_of_the_process(digits):
    """Else the cached backbone, and every FID, would depend on which process trained it first."""
    fingerprints = []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        fingerprints.append(backbones.state_fingerprint(backbones.train_classifier(digits).net))
        assert torch.get_num_threads() == threads  # restored afterwards
    torch.set_num_threads(1)
    assert fingerprints[0] == fingerprints[1]


def test_classifier_cache_is_reused_second_call_trains_nothing(cache, digits, monkeypatch):
    calls = []
    real_train = backbones.train_classifier
    monkeypatch.setattr(backbones, "train_classifier", lambda *a, **k: calls.append(1) or real_train(*a, **k))
    first = get_backbone("classifier", digits)  # trains only if an earlier test has not
    trained_before = len(calls)
    backbones.forget_loaded_backbones()  # only the disk cache is left
    second = get_backbone("classifier", digits)
    assert len(calls) == trained_before <= 1
    assert second is not first and second.fingerprint == first.fingerprint and second.accuracy == first.accuracy


def test_classifier_features_tell_real_digits_from_noise(cache, digits):
    backbone = get_backbone("classifier", digits)
    real_vs_real = fid_of_features(backbone.features(digits.train_x[:360]), backbone.features(digits.test_x))
    noise = torch.rand(360, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    real_vs_noise = fid_of_features(backbone.features(noise), backbone.features(digits.test_x))
    assert real_vs_noise > 10 * real_vs_real


# ---------------------------------------------------------------- evaluate(): FID rows


def test_evaluate_fid_rows_of_a_perfect_autoencoder(cache, digits):
    config = EvalConfig(fid_samples=200)
    rows = {r["metric"]: r for r in evaluate(PixelIdentity(digits.image_shape), digits, config)}
    assert abs(rows["fid_recon"]["value"]) < 1e-3  # reconstructions are the reference images themselves
    assert rows["fid"]["value"] > 100 * max(abs(rows["fid_recon"]["value"]), 1e-3)  # uniform noise is not digits
    for name, n in (("fid", 200), ("fid_recon", 360), ("fid_backbone_acc", 360)):
        assert (rows[name]["backbone"], rows[name]["split"], rows[name]["n"]) == (f"classifier-digits-v{backbones.CLASSIFIER_VERSION}", "test", n)
    assert rows["fid_backbone_acc"]["value"] > 0.95
    assert rows["recon_sse"]["value"] == 0
    assert rows["trustworthiness_k10"]["value"] == 1.0 and rows["continuity_k10"]["value"] == 1.0


def test_same_checkpoint_same_numbers_and_no_fid_rows_when_asked(cache, digits):
    model = PixelIdentity(digits.image_shape)
    config = EvalConfig(fid_samples=100)
    assert evaluate(model, digits, config) == evaluate(model, digits, config)
    names = {r["metric"] for r in evaluate(model, digits, EvalConfig(fid_samples=0))}
    assert "fid" not in names and "fid_recon" not in names and "recon_sse" in names


class TrainingImageSampler(PixelIdentity):
    """Samples are training images drawn at random: the test images' distribution, other images."""

    def __init__(self, train_x):
        super().__init__(tuple(train_x.shape[1:]))
        self.train_x = train_x

    def sample(self, n, generator=None):
        return self.train_x[torch.randint(len(self.train_x), (n,), generator=generator)]


def test_evaluate_kid_precision_recall_density_coverage_rows_on_known_answers(cache, digits):
    config = EvalConfig(fid_samples=300)
    noise = {r["metric"]: r for r in evaluate(PixelIdentity(digits.image_shape), digits, config)}
    real = {r["metric"]: r for r in evaluate(TrainingImageSampler(digits.train_x), digits, config)}
    for rows in (noise, real):
        for name in ("kid", "kid_std", "precision", "recall", "density", "coverage"):
            assert (rows[name]["backbone"], rows[name]["split"], rows[name]["n"]) == (rows["fid"]["backbone"], "test", 300)
    # uniform noise is not a digit: almost no digit is covered by it. On 8x8 images it is not far from
    # the digits either: the batch-normalised classifier v4 maps it near their region (measured precision
    # 0.72, density 0.41; v3: 0.21 and under 0.2; 28x28 noise on mnist-5k: 0.00 with or without the BN)
    assert noise["precision"]["value"] < real["precision"]["value"] - 0.1 and noise["recall"]["value"] < 0.05
    assert noise["coverage"]["value"] < 0.15 and noise["density"]["value"] < 0.6
    # images of the same distribution: most samples and most reference images inside each other's
    # manifold (measured 0.91, 0.87, 0.89), density near 1 (0.99)
    for name in ("precision", "recall", "coverage"):
        assert real[name]["value"] > 0.8
    assert 0.8 < real["density"]["value"] < 1.2
    assert noise["kid"]["value"] > 5 * real["kid"]["value"] > 0  # measured 2269 against 174 (v3: 379119, 1799)


def test_metric_names_list_exactly_what_evaluate_writes(cache, digits):
    """tune's criteria and the docs read this list: it must not drift from evaluate()."""
    from aebench.run.evaluation import metric_names

    for config in (EvalConfig(fid_samples=100), EvalConfig(fid_samples=0, knn_ks=(1, 7), denoise_sigmas=(0.2,))):
        written = [r["metric"] for r in evaluate(TrainingImageSampler(digits.train_x), digits, config)]
        assert sorted(written) == sorted(metric_names(config))
