"""Two samplers for every model: its prior, and a Gaussian mixture fitted on its training codes
(aebench.metrics.gmm, aebench.metrics.samplers), scored by the same generation metrics."""
import math

import numpy as np
import pytest
import torch

from aebench.metrics.declarations import DECLARED
from aebench.metrics.directions import direction
from aebench.metrics.gmm import GMM_COMPONENTS, MixtureFitError, fit_code_mixture
from aebench.metrics.samplers import PER_SAMPLER_METRICS, SAMPLERS, sampler_metric, split_sampler
from aebench.run.evaluation import (
    COPYING_METRICS,
    GENERATION_METRICS,
    SAMPLE_METRICS,
    EvalConfig,
    evaluate,
    metric_names,
)
from models.contract import AutoEncoder, Hyperparameters

# ---------------------------------------------------------------- the mixture on known codes

MEANS = np.array([[10.0 * (k % 5), 10.0 * (k // 5), 3.0 * k] for k in range(GMM_COMPONENTS)])
WEIGHTS = np.arange(5, GMM_COMPONENTS + 5) / np.arange(5, GMM_COMPONENTS + 5).sum()  # 0.053 to 0.147


def covariance(k: int) -> np.ndarray:
    """A different full (correlated) covariance per component, eigenvalues between 0.1 and 1."""
    rotation = np.linalg.qr(np.random.default_rng(k).standard_normal((3, 3)))[0]
    return rotation @ np.diag([1.0, 0.4, 0.1]) @ rotation.T


def known_mixture_codes(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    components = rng.choice(GMM_COMPONENTS, size=n, p=WEIGHTS)
    chol = np.stack([np.linalg.cholesky(covariance(k)) for k in range(GMM_COMPONENTS)])
    return MEANS[components] + np.einsum("nij,nj->ni", chol[components], rng.standard_normal((n, 3)))


def nearest_true_component(codes: np.ndarray) -> np.ndarray:
    return np.argmin(((codes[:, None, :] - MEANS[None]) ** 2).sum(-1), axis=1)


def test_the_mixture_fitted_on_codes_of_a_known_mixture_recovers_it():
    fitted = fit_code_mixture(known_mixture_codes(20000, seed=0), seed=0)
    assert fitted.converged
    order = nearest_true_component(fitted.mixture.means_)
    assert sorted(order) == list(range(GMM_COMPONENTS))  # one fitted component per true one
    for fitted_k, true_k in enumerate(order):
        assert np.abs(fitted.mixture.means_[fitted_k] - MEANS[true_k]).max() < 0.1
        assert abs(fitted.mixture.weights_[fitted_k] - WEIGHTS[true_k]) < 0.01
        assert np.abs(fitted.mixture.covariances_[fitted_k] - covariance(true_k)).max() < 0.15  # ~1000 codes each


def test_its_draws_follow_the_mixture_in_random_order_and_are_seeded():
    fitted = fit_code_mixture(known_mixture_codes(20000, seed=0), seed=0)
    draws = fitted.sample(20000, seed=1)
    assert draws.shape == (20000, 3) and draws.dtype == np.float32
    labels = nearest_true_component(draws)
    assert np.abs(np.bincount(labels, minlength=GMM_COMPONENTS) / len(draws) - WEIGHTS).max() < 0.01
    for k in range(GMM_COMPONENTS):  # each component's spread is its covariance
        assert np.abs(np.cov(draws[labels == k], rowvar=False) - covariance(k)).max() < 0.15
    # not grouped by component (scikit-learn's own sample() is): every component in the first 200 draws
    assert set(labels[:200]) == set(range(GMM_COMPONENTS))
    assert np.array_equal(draws, fitted.sample(20000, seed=1)) and not np.array_equal(draws, fitted.sample(20000, 2))


def test_codes_of_any_shape_are_flattened_for_the_fit_and_drawn_in_their_shape():
    codes = known_mixture_codes(3000, seed=0)
    shaped = np.concatenate([codes, codes[:, :1]], axis=1).reshape(-1, 2, 2)  # (n, 2, 2), one dimension repeated
    fitted = fit_code_mixture(shaped, seed=0)
    assert fitted.mixture.means_.shape == (GMM_COMPONENTS, 4)
    draws = fitted.sample(500, seed=0)
    assert draws.shape == (500, 2, 2)
    # the repeated dimension is rank-deficient: reg_covar keeps the fit possible and the copy a copy
    assert np.abs(draws[:, 1, 1] - draws[:, 0, 0]).max() < 0.05


def test_a_collapsed_code_set_is_still_fitted():
    codes = np.zeros((500, 4))  # every code the same point: a posterior collapse
    codes[:, 0] = np.random.default_rng(0).standard_normal(500)
    draws = fit_code_mixture(codes, seed=0).sample(100, seed=0)
    assert np.isfinite(draws).all() and np.abs(draws[:, 1:]).max() < 0.05


@pytest.mark.parametrize("codes,reason", [
    (np.full((100, 3), np.nan), "not finite"),
    (np.zeros((5, 3)), "5 training codes are fewer than the 10 components"),
])
def test_a_mixture_that_cannot_be_fitted_says_why(codes, reason):
    with pytest.raises(MixtureFitError, match=reason):
        fit_code_mixture(codes, seed=0)


# ---------------------------------------------------------------- names and directions

# Known answer: the metrics of generated samples, in the order evaluate() writes each sampler's rows
# (fid, then fidelity's, then data-copying's), as listed by hand before the declarations said it.
GENERATED_SAMPLE_METRICS = ("fid", "kid", "kid_std", "precision", "recall", "density", "coverage",
                            "nn_train_ratio", "copying_ct")


def test_the_declarations_mark_exactly_the_metrics_of_generated_samples_as_per_sampler():
    assert {m.name for m in DECLARED if m.per_sampler} == set(GENERATED_SAMPLE_METRICS)
    assert PER_SAMPLER_METRICS == GENERATED_SAMPLE_METRICS
    # the evaluation's split: data-copying reads the training images, which the generation scope leaves out
    assert COPYING_METRICS == ["nn_train_ratio", "copying_ct"]
    assert SAMPLE_METRICS == ["fid", "kid", "kid_std", "precision", "recall", "density", "coverage"]
    assert metric_names(EvalConfig(scope="generation")) == [*SAMPLE_METRICS, *(f"{m}_gmm" for m in SAMPLE_METRICS),
                                                            "fid_backbone_acc"]


def test_every_generation_metric_has_a_gmm_row_name_with_its_base_direction():
    assert list(SAMPLERS) == ["prior", "gmm"]
    for metric in PER_SAMPLER_METRICS:
        assert sampler_metric(metric, "prior") == metric  # today's rows keep their names
        assert split_sampler(metric) == (metric, "prior")
        assert split_sampler(sampler_metric(metric, "gmm")) == (metric, "gmm")
        assert direction(f"{metric}_gmm") == direction(metric)
    assert direction("fid_gmm") == "min" and direction("precision_gmm") == "max" and direction("kid_std_gmm") is None
    assert split_sampler("recon_sse") == ("recon_sse", None) and split_sampler("fid_recon") == ("fid_recon", None)


def test_metric_names_list_both_samplers_in_both_scopes():
    for config in (EvalConfig(fid_samples=100), EvalConfig(fid_samples=100, scope="generation")):
        names = metric_names(config)
        for metric in ("fid", "kid", "kid_std", "precision", "recall", "density", "coverage"):
            assert metric in names and f"{metric}_gmm" in names
        assert len(names) == len(set(names))
    assert {"nn_train_ratio_gmm", "copying_ct_gmm"} <= set(metric_names(EvalConfig(fid_samples=100)))
    assert "fid_recon_gmm" not in metric_names(EvalConfig()) and "fid_backbone_acc_gmm" not in GENERATION_METRICS
    assert not any(name.endswith("_gmm") for name in metric_names(EvalConfig(fid_samples=0)))


# ---------------------------------------------------------------- both samplers in the evaluation


class PixelCodes(AutoEncoder):
    """The codes are the pixels (encode flattens, decode reshapes), the prior is uniform noise: a mixture
    fitted on the codes is a density model of the images themselves, the prior is no digit at all."""

    def __init__(self, image_shape, broken_codes: bool = False):
        super().__init__(image_shape, Hyperparameters(latent_dim=int(np.prod(image_shape))))
        self.unused = torch.nn.Parameter(torch.zeros(1))
        self.broken_codes = broken_codes

    def encode(self, x):
        codes = x.flatten(1)
        return codes * float("nan") if self.broken_codes else codes

    def decode(self, z):
        return z.view(len(z), *self.image_shape).clamp(0, 1)

    def sample(self, n, generator=None):
        return torch.rand((n, *self.image_shape), generator=generator)


PIXEL_EVALUATION = EvalConfig(fid_samples=300, fid_backbone="classifier")


@pytest.fixture(scope="module")
def pixel_rows(digits):
    rows = evaluate(PixelCodes(digits.image_shape), digits, PIXEL_EVALUATION, log=lambda *_: None)
    return {row["metric"]: row for row in rows}  # in the order evaluate() wrote them


def test_metric_names_are_the_rows_evaluate_writes_in_its_order(pixel_rows):
    assert list(pixel_rows) == metric_names(PIXEL_EVALUATION)


def test_both_samplers_are_scored_on_as_many_samples_against_one_reference(pixel_rows):
    for metric in PER_SAMPLER_METRICS:
        prior, gmm = pixel_rows[metric], pixel_rows[f"{metric}_gmm"]
        assert (gmm["n"], gmm["split"], gmm["backbone"]) == (prior["n"], prior["split"], prior["backbone"])
        assert prior["n"] == 300
    assert pixel_rows["fid_gmm"]["backbone"].startswith("classifier-digits") and pixel_rows["nn_train_ratio_gmm"]["backbone"] == ""


def test_a_mixture_of_the_images_samples_digits_where_the_noise_prior_does_not(pixel_rows):
    value = {name: row["value"] for name, row in pixel_rows.items()}
    # a 10-component mixture of the digits' pixels draws blurred digits. In pixel space, whatever the
    # backbone: about as far from their nearest training digit as test digits are (measured 1.15), where
    # uniform noise is far from every digit (3.4)
    assert value["nn_train_ratio_gmm"] < 1.5 and value["nn_train_ratio"] > 2.5
    # in the backbone's features (classifier v4 measured FID 47 against 342): nearer the test digits, and
    # covering most of them (recall 0.76, coverage 0.88) where noise covers few (0.03, 0.12)
    assert value["fid_gmm"] < value["fid"] / 3 and value["kid_gmm"] < value["kid"]
    for name in ("recall", "coverage"):
        assert value[f"{name}_gmm"] > 0.5 and value[f"{name}_gmm"] > value[name] + 0.4


def test_a_failed_fit_gives_nan_gmm_rows_with_the_reason_and_keeps_the_prior_rows(digits):
    said = []
    config = EvalConfig(fid_samples=100, fid_backbone="classifier", scope="generation")
    rows = {row["metric"]: row for row in evaluate(PixelCodes(digits.image_shape, broken_codes=True), digits, config,
                                                   log=said.append)}
    assert sorted(rows) == sorted(GENERATION_METRICS)
    for metric in ("fid", "kid", "precision", "coverage"):
        assert math.isfinite(rows[metric]["value"])
        assert math.isnan(rows[f"{metric}_gmm"]["value"]) and rows[f"{metric}_gmm"]["n"] == 100
    assert any("gmm sampler" in line and "not finite" in line for line in said)
