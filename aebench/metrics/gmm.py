"""The ex-post sampler: a Gaussian mixture fitted on a model's training codes, drawn from for its decoder.

As Ghosh et al. 2020 (RAE) and pythae's benchmark do: scikit-learn's GaussianMixture with 10
components and full covariances, fitted on the deterministic codes (encode) of the training images,
seeded. A deterministic autoencoder is then judged by what its decoder can produce from where its
codes actually lie, not only by how well its codes match the prior it was trained towards.

Codes of any shape are flattened for the mixture and its draws shaped back. reg_covar (added to every
covariance's diagonal) keeps a collapsed or rank-deficient code set fittable; a fit that still fails
(non-finite codes of a diverged model, fewer codes than components) raises MixtureFitError with the
reason, for the caller to record NaN rows rather than stop the run.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture
from threadpoolctl import threadpool_limits

GMM_COMPONENTS = 10
GMM_REG_COVAR = 1e-6  # scikit-learn's default, as pythae uses it: about 0 next to codes of scale ~1


class MixtureFitError(ValueError):
    """The mixture could not be fitted on these codes; the message says why."""


@dataclass
class CodeMixture:
    """A fitted mixture and the shape of one code (what its flat draws are reshaped to)."""

    mixture: GaussianMixture
    code_shape: tuple[int, ...]
    converged: bool

    def sample(self, n: int, seed: int) -> np.ndarray:
        """n codes (float32, shape (n, *code_shape)) drawn from the mixture with a generator of their
        own. Unlike GaussianMixture.sample, whose draws come sorted by component, in random order."""
        rng = np.random.default_rng(seed)
        weights = self.mixture.weights_ / self.mixture.weights_.sum()
        components = rng.choice(len(weights), size=n, p=weights)
        noise = rng.standard_normal((n, self.mixture.means_.shape[1]))
        codes = np.empty_like(noise)
        for k, covariance in enumerate(self.mixture.covariances_):
            chosen = components == k
            codes[chosen] = self.mixture.means_[k] + noise[chosen] @ np.linalg.cholesky(covariance).T
        return codes.reshape(n, *self.code_shape).astype(np.float32)


def fit_code_mixture(codes: np.ndarray, seed: int, components: int = GMM_COMPONENTS,
                     reg_covar: float = GMM_REG_COVAR) -> CodeMixture:
    """The mixture of `components` full-covariance Gaussians fitted on `codes` (n, ...), seeded (k-means
    initialisation and EM). Raises MixtureFitError, naming the reason, where no fit is possible."""
    codes = np.asarray(codes)
    flat = codes.reshape(len(codes), -1).astype(np.float64)
    if not np.isfinite(flat).all():
        raise MixtureFitError("the training codes are not finite (a diverged model)")
    if len(flat) < components:
        raise MixtureFitError(f"{len(flat)} training codes are fewer than the {components} components")
    mixture = GaussianMixture(components, covariance_type="full", reg_covar=reg_covar, random_state=seed)
    # One BLAS thread: the fit does not depend on how many threads the process has (as the linear probe).
    with threadpool_limits(1), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        try:
            mixture.fit(flat)
        except (ValueError, np.linalg.LinAlgError) as e:  # e.g. a covariance that reg_covar did not rescue
            raise MixtureFitError(f"scikit-learn's fit failed ({e})") from None
    converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
    return CodeMixture(mixture, tuple(codes.shape[1:]), converged)
