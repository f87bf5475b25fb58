"""Probes, reconstruction, denoising, local structure and the evaluation config, on known answers."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.manifold import trustworthiness

import cli
from aebench.errors import UserError
from aebench.features.backbones import INCEPTION_FILE
from aebench.metrics.denoising import denoise_metric_name, denoising_errors
from aebench.metrics.local_structure import continuity_score, fixed_subset, neighbourhood_scores, trustworthiness_score
from aebench.metrics.probes import knn_accuracy, linear_accuracy
from aebench.metrics.reconstruction import reconstruction_errors
from aebench.run.evaluation import INCEPTION_MIN_IMAGES, EvalConfig, reference_size
from aebench.run.profiles import get_profile
from aebench.run.runner import plan

# ---------------------------------------------------------------- probes


def clustered_latents(n: int, classes: int, seed: int):
    """Each class a tight blob around its own far-apart centre: linearly separable."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    return np.eye(classes)[y] * 10 + rng.normal(scale=0.1, size=(n, classes)), y


@pytest.mark.parametrize("k", [1, 3, 5, 10])
def test_knn_probe_is_perfect_on_separable_latents(k):
    (train_z, train_y), (test_z, test_y) = clustered_latents(500, 10, 0), clustered_latents(200, 10, 1)
    assert knn_accuracy(train_z, train_y, test_z, test_y, k) >= 0.99


def test_linear_probe_is_perfect_on_separable_latents():
    (train_z, train_y), (test_z, test_y) = clustered_latents(500, 10, 0), clustered_latents(200, 10, 1)
    assert linear_accuracy(train_z, train_y, test_z, test_y) >= 0.99


def test_the_linear_probe_fits_on_one_blas_thread_whatever_the_process_allows(monkeypatch):
    # Its score must not depend on --jobs, which sets the threads of each worker (aebench/run/cell.py).
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_info, threadpool_limits

    def blas_threads() -> list[int]:
        return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]

    seen, fit = [], LogisticRegression.fit
    def fit_and_record(self, *args, **kwargs):
        seen.extend(blas_threads())
        return fit(self, *args, **kwargs)
    monkeypatch.setattr(LogisticRegression, "fit", fit_and_record)
    (train_z, train_y), (test_z, test_y) = clustered_latents(200, 3, 0), clustered_latents(50, 3, 1)
    with threadpool_limits(2):
        assert max(blas_threads()) == 2
        linear_accuracy(train_z, train_y, test_z, test_y)
    assert seen and set(seen) == {1}


def test_probes_are_at_chance_on_latents_unrelated_to_the_labels():
    rng = np.random.default_rng(2)
    train_z, test_z = rng.normal(size=(2000, 8)), rng.normal(size=(1000, 8))
    train_y, test_y = rng.integers(0, 10, 2000), rng.integers(0, 10, 1000)
    scores = [knn_accuracy(train_z, train_y, test_z, test_y, k) for k in (1, 5, 10)]
    scores.append(linear_accuracy(train_z, train_y, test_z, test_y))
    assert all(0.06 < s < 0.14 for s in scores), scores  # chance is 0.1; the std of a 1000-image score ~0.01


# ---------------------------------------------------------------- reconstruction


def test_reconstruction_errors_known_values():
    x = torch.rand(20, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 0.8
    assert reconstruction_errors(x.clone(), x) == {"recon_sse": 0.0, "recon_mse": 0.0}
    errors = reconstruction_errors(x + 0.1, x)
    assert errors["recon_sse"] == pytest.approx(784 * 0.01, rel=1e-4)  # per-image SUM, the paper's unit
    assert errors["recon_mse"] == pytest.approx(0.01, rel=1e-4)


# ---------------------------------------------------------------- denoising


def blur(x):
    """A fixed, imperfect 'autoencoder': every pixel replaced by its image's mean."""
    return x.mean(dim=(2, 3), keepdim=True).expand_as(x)


def test_denoising_at_sigma_zero_equals_the_reconstruction_error(digits):
    x = digits.test_x
    at_zero = denoising_errors(blur, x, [0.0])[denoise_metric_name(0.0)]
    assert at_zero == reconstruction_errors(blur(x), x)["recon_sse"] and at_zero > 1


def test_denoising_error_of_the_identity_is_the_noise_energy():
    x = torch.full((200, 1, 10, 10), 0.5)  # 5 sigma from the clip at 0 and 1: clipping is negligible
    errors = denoising_errors(lambda t: t, x, [0.0, 0.05, 0.1])
    assert list(errors) == ["denoise_sse_s0", "denoise_sse_s0.05", "denoise_sse_s0.1"]
    assert errors["denoise_sse_s0"] == 0
    assert errors["denoise_sse_s0.05"] == pytest.approx(100 * 0.05 ** 2, rel=0.03)
    assert errors["denoise_sse_s0.1"] == pytest.approx(100 * 0.1 ** 2, rel=0.03)


def test_denoising_is_seeded_and_grows_with_the_noise(digits):
    x = digits.test_x
    sigmas = (0.1, 0.2, 0.3, 0.4, 0.5)
    first, again, other_seed = (denoising_errors(blur, x, sigmas, seed=s) for s in (0, 0, 1))
    assert first == again and first != other_seed
    assert list(first) == [f"denoise_sse_s{s}" for s in ("0.1", "0.2", "0.3", "0.4", "0.5")]
    identity = list(denoising_errors(lambda t: t, x, sigmas).values())
    assert identity == sorted(identity) and identity[0] > 0


# ---------------------------------------------------------------- local structure


def test_identity_and_isometric_embeddings_are_fully_trustworthy():
    x = torch.rand(300, 1, 6, 6, generator=torch.Generator().manual_seed(0))
    flat = x.flatten(1).numpy()
    rotation, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(36, 36)))
    assert trustworthiness_score(x, flat, 10) == pytest.approx(1.0)
    assert trustworthiness_score(x, flat @ rotation + 5.0, 10) == pytest.approx(1.0)
    assert continuity_score(x, flat @ rotation, 10) == pytest.approx(1.0)


def test_trustworthiness_matches_scikit_learn_where_there_are_no_ties():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(200, 20))
    z = x[:, :4] + rng.normal(scale=0.5, size=(200, 4))
    for k in (1, 5, 10):
        assert trustworthiness_score(x, z, k) == pytest.approx(trustworthiness(x, z, n_neighbors=k), abs=1e-12)
        assert continuity_score(x, z, k) == pytest.approx(trustworthiness(z, x, n_neighbors=k), abs=1e-12)
        assert neighbourhood_scores(x, z, k) == (trustworthiness_score(x, z, k), continuity_score(x, z, k))


def test_identity_on_images_with_tied_distances_is_exactly_one(digits):
    x = digits.test_x  # pixels are multiples of 1/16: many exactly equal distances
    assert trustworthiness_score(x, x.flatten(1), 10) == 1.0 and continuity_score(x, x.flatten(1), 10) == 1.0


def test_an_unrelated_embedding_is_not_trustworthy():
    x = torch.rand(300, 36, generator=torch.Generator().manual_seed(0))
    z = np.random.default_rng(1).normal(size=(300, 2))
    assert trustworthiness_score(x, z, 10) < 0.7 and continuity_score(x, z, 10) < 0.7


def test_a_projection_keeping_most_variance_scores_between():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(300, 10)) * np.array([10, 8, 6, 1, 1, 1, 1, 1, 1, 1])
    projected = trustworthiness_score(x, x[:, :3], 10)
    assert 0.7 < projected < 1.0 and projected > trustworthiness_score(x, x[:, 3:5], 10)


def test_neighbourhood_size_must_fit_the_subset():
    with pytest.raises(ValueError, match="at least 21 points"):
        trustworthiness_score(np.zeros((20, 3)), np.zeros((20, 2)), 10)


def test_fixed_subset_is_seeded_sorted_and_whole_when_small():
    a, b = fixed_subset(1000, 100), fixed_subset(1000, 100)
    assert torch.equal(a, b) and torch.equal(a, a.sort().values) and len(a.unique()) == 100
    assert not torch.equal(a, torch.arange(100)) and not torch.equal(a, fixed_subset(1000, 100, seed=1))
    assert torch.equal(fixed_subset(360, 5000), torch.arange(360))


# ---------------------------------------------------------------- configuration


@pytest.mark.parametrize("kwargs,message", [
    ({"fid_backbone": "resnet"}, "choices: auto, inception, classifier"),
    ({"fid_samples": -1}, "fid_samples = -1"),
    ({"fid_samples": 1}, "fid_samples = 1"),
    ({"fid_reference": 1}, "fid_reference = 1"),
    ({"denoise_sigmas": (0.1, -0.2)}, "denoise_sigmas"),
    ({"neighbours_k": 10, "neighbours_subset": 15}, "neighbours_subset"),
])
def test_bad_evaluation_settings_are_user_errors(kwargs, message):
    with pytest.raises(UserError, match=message):
        EvalConfig(**kwargs)


def test_eval_overrides_reach_the_run_and_its_config_hash():
    smoke = get_profile("smoke")
    base = plan(smoke, ["vae"], ["digits"], [0])[0]
    changed = plan(smoke, ["vae"], ["digits"], [0], eval_overrides={"fid_samples": 50, "fid_backbone": "classifier"})[0]
    assert (changed.eval.fid_samples, changed.eval.fid_backbone) == (50, "classifier")
    assert base.eval.fid_samples == 2000 and changed.config_hash != base.config_hash
    # a weights path is where a file is on this machine, not part of what the run is
    with_path = plan(smoke, ["vae"], ["digits"], [0], eval_overrides={"inception_weights": "/some/file.pth"})[0]
    assert with_path.eval.inception_weights == "/some/file.pth" and with_path.config_hash == base.config_hash


def test_fid_sample_sizes_of_the_profiles():
    assert (EvalConfig().fid_samples, EvalConfig().fid_reference) == (10000, 10000)
    smoke = get_profile("smoke").eval  # cheap: 2000 samples against all 360 test images of digits
    assert smoke.fid_samples == 2000 and smoke.fid_reference >= 360
    for name in ("quick", "standard", "paper"):  # 10000 samples against (up to) 10000 test images
        evaluation = get_profile(name).eval
        assert (evaluation.fid_samples, evaluation.fid_reference) == (10000, 10000), name


@pytest.fixture
def inception_weights_file(tmp_path, monkeypatch):
    """A file where Inception's weights are looked for: enough for the size rule, which loads nothing."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    path = tmp_path / "torch" / "hub" / "checkpoints" / INCEPTION_FILE
    path.parent.mkdir(parents=True)
    path.write_bytes(b"")
    return path


def test_inception_fid_on_fewer_than_5000_samples_is_refused(inception_weights_file):
    with pytest.raises(UserError, match="fid_samples = 4999: Inception FID .* at least 5000 samples"):
        EvalConfig(fid_backbone="inception", fid_samples=INCEPTION_MIN_IMAGES - 1)
    EvalConfig(fid_backbone="inception", fid_samples=INCEPTION_MIN_IMAGES)
    EvalConfig(fid_backbone="classifier", fid_samples=100)  # the classifier's 64-d features: no such rule


def test_inception_reference_is_the_whole_split_when_it_has_fewer_than_5000_images(digits, inception_weights_file):
    said = []
    config = EvalConfig(fid_backbone="inception", fid_samples=INCEPTION_MIN_IMAGES)
    assert reference_size(config, digits, said.append) == 360  # all of digits' test images
    assert len(said) == 1 and "360 images, fewer than the rule's 5000: the reference is all of them" in said[0]
    with pytest.raises(UserError, match="fid_reference = 359: Inception FID .* the whole test split of digits"):
        reference_size(EvalConfig(fid_backbone="inception", fid_samples=5000, fid_reference=359), digits)
    assert reference_size(EvalConfig(fid_backbone="classifier", fid_reference=100), digits) == 100


@pytest.mark.parametrize("sizes,named", [
    (["--fid-samples", "2000"], "fid_samples = 2000"),
    (["--fid-samples", "5000", "--fid-reference", "100"], "fid_reference = 100"),
])
def test_cli_inception_size_rule_is_one_line_exit_2_before_training(capsys, tmp_path, inception_weights_file,
                                                                    sizes, named):
    code = cli.main(["run", "--models", "vae", "--profile", "smoke", "--out", str(tmp_path / "out"),
                     "--fid-backbone", "inception", *sizes])
    err = capsys.readouterr().err
    assert code == 2 and named in err and "Inception FID" in err and "5000" in err and err.count("\n") == 1
    assert not (tmp_path / "out" / "smoke" / "runs.csv").exists()


def test_cli_inception_without_weights_stops_before_training(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    code = cli.main(["run", "--models", "vae", "--profile", "smoke", "--out", str(tmp_path), "--fid-backbone", "inception"])
    err = capsys.readouterr().err
    assert code == 2 and "Inception weights" in err and err.count("\n") == 1
    assert not (tmp_path / "smoke" / "runs.csv").exists()
