"""VampPrior VAE, one level (Tomczak & Welling, AISTATS 2018).

The VAE with its N(0, I) prior replaced by the "variational mixture of posteriors"
    p(z) = (1/K) sum_k q(z | u_k),
the encoder's own posteriors at K learnable pseudo-inputs u_k in data space. The KL term has no
closed form, so it is estimated with the one reparameterised sample z ~ q(z|x) the VAE already draws:
    kl ~= log q(z|x) - log p(z),   log p(z) = logsumexp_k log q(z|u_k) - log K.
Everything else (networks, likelihood, reconstruction term, encode as the posterior mean) is the VAE's.

Pseudo-inputs start at K distinct random training images plus N(0, init_noise^2) noise and stay in
[0, 1], exactly as SWAE's (models/pseudo_inputs.py). Defaults and their sources: baselines/DEFAULTS.md.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from baselines.vae import VAE, WARMUP_EPOCHS_RANGE, VAEConfig
from models.contract import IntRange
from models.pseudo_inputs import PseudoInputs, PseudoInputsConfig

LOG_2PI = math.log(2 * math.pi)
PLACEHOLDER_PSEUDO_INPUT = 0.5  # value before prepare() replaces the pseudo-inputs with training images


@dataclass
class VampPriorConfig(VAEConfig, PseudoInputsConfig):  # init_noise and the K checks come from PseudoInputsConfig
    K: int = 500  # number of pseudo-inputs (the paper's value); must be <= training images


def log_normal_diag(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, diag exp(logvar)), summed over the last dimension (broadcasts)."""
    return -0.5 * (LOG_2PI + logvar + (z - mu) ** 2 * torch.exp(-logvar)).sum(-1)


def log_normal_diag_pairs(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z_i; mu_k, diag exp(logvar_k)) for every row i of z (N, d) and k of mu, logvar (K, d): (N, K), float64.

    The same value as log_normal_diag broadcast to (N, K, d), computed as matrix products of the expanded
    square, sum_d (z - mu)^2 / var = z^2 . 1/var - 2 z . mu/var + mu^2 . 1/var: the (N, K, d) broadcast and
    its backward were half of a standard-profile VampPrior step (K = 500). In float64, because the
    expansion subtracts large terms when a variance is small; the products are small (N x d x K).
    """
    z, mu, logvar = z.double(), mu.double(), logvar.double()
    precision = torch.exp(-logvar)
    square = (z ** 2) @ precision.T - 2.0 * (z @ (mu * precision).T) + (mu ** 2 * precision).sum(1)
    return -0.5 * (z.shape[1] * LOG_2PI + logvar.sum(1) + square)


class VampPrior(PseudoInputs, VAE):
    Config = VampPriorConfig
    # K per profile: smoke on digits (1257 training images), quick on mnist-5k (3500), paper: the paper's 500;
    # standard: the values `tune` chose on mnist's validation split (results/reference/tune-standard-mnist).
    profile_defaults = {"smoke": {"K": 100}, "quick": {"K": 500}, "paper": {"K": 500},
                        "standard": {"K": 500, "warmup_epochs": 50}}
    # `aebench tune`: K around the paper's 500, in log scale (a bound above the training set is lowered to
    # it; not beyond 2000, since every step encodes all K pseudo-inputs), and the VAE's warm-up range, which
    # holds the authors' 100 epochs.
    search_space = {"K": IntRange(50, 2000, log=True), "warmup_epochs": WARMUP_EPOCHS_RANGE}

    def __init__(self, image_shape, config: VampPriorConfig):
        super().__init__(image_shape, config)
        self.pseudo_inputs = nn.Parameter(torch.full((config.K, *self.image_shape), PLACEHOLDER_PSEUDO_INPUT))

    # --- the prior

    def log_prior(self, z: torch.Tensor) -> torch.Tensor:
        """log p(z) per row of z: log-sum-exp over the K components minus log K (stable for far-off z)."""
        mu_k, logvar_k = self.posterior(self.pseudo_inputs)  # (K, d) each
        log_components = log_normal_diag_pairs(z, mu_k, logvar_k)  # (N, K), float64
        return (torch.logsumexp(log_components, dim=1) - math.log(self.config.K)).to(z.dtype)

    def kl_term(self, z, mu, logvar):
        """Single-sample estimate of KL(q(z|x) || p(z)) per image: log q(z|x) - log p(z) at the drawn z."""
        return log_normal_diag(z, mu, logvar) - self.log_prior(z)

    def sample(self, n, generator=None):
        components = torch.randint(self.config.K, (n,), generator=generator).to(self.device)  # uniform mixture
        mu, logvar = self.posterior(self.pseudo_inputs[components])
        return self.decode(mu + (0.5 * logvar).exp() * self.noise(mu.shape, generator))
