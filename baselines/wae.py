"""WAE-MMD, Wasserstein Auto-Encoders (Tolstikhin, Bousquet, Gelly & Schoelkopf, ICLR 2018).

A deterministic encoder z = E(x) and decoder G (pixel means through a sigmoid). The objective is a
reconstruction cost plus lambda times the MMD between the encoded codes of a batch and as many draws
from the prior N(0, prior_var * I):
    rec = ||G(E(x)) - x||^2 summed over pixels, averaged over the batch (the paper's c(x, y))
    mmd = unbiased estimate of MMD^2(q(z), p(z)) with the inverse multiquadratic kernel
    loss = rec_scale * rec + lam * mmd
The kernel is k(x, y) = C / (C + ||x - y||^2), summed over C = s * 2 * latent_dim * prior_var for the
scales s of the authors' code (IMQ_SCALES). Defaults and their sources: baselines/DEFAULTS.md.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from models.contract import AutoEncoder, FloatRange, Hyperparameters, per_image_sum, without_autocast
from models.networks import build_decoder, build_encoder

IMQ_SCALES = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)  # multiples of 2 * latent_dim * prior_var (authors' code)


def squared_distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(n, m) matrix of ||a_i - b_j||^2, without the (n, m, d) intermediate of broadcasting."""
    sq = (a * a).sum(1, keepdim=True) + (b * b).sum(1).unsqueeze(0) - 2.0 * a @ b.T
    return sq.clamp_min(0.0)  # rounding can make an exact zero slightly negative


def imq_kernel(sq_dist: torch.Tensor, base_c: float, scales=IMQ_SCALES) -> torch.Tensor:
    """Sum over scales s of C / (C + d^2), with C = s * base_c."""
    return sum((s * base_c) / (s * base_c + sq_dist) for s in scales)


def imq_mmd(x: torch.Tensor, y: torch.Tensor, prior_var: float = 1.0, scales=IMQ_SCALES) -> torch.Tensor:
    """Unbiased (U-statistic) estimate of MMD^2 between samples x (n, d) and y (m, d).

    Within-sample means leave out the diagonal k(x_i, x_i), which is what makes the estimate unbiased;
    it can therefore be slightly negative when the two distributions are equal.
    """
    n, m = len(x), len(y)
    if n < 2 or m < 2:
        raise ValueError(f"the unbiased MMD estimate needs at least 2 points in each sample, got {n} and {m} "
                         "(a batch of 1 image: choose a batch size that does not leave one image over)")
    base_c = 2.0 * x.shape[1] * prior_var
    with without_autocast(x):  # a difference of near-equal means: float32 under bf16 training too
        k_xx = imq_kernel(squared_distances(x, x), base_c, scales)
        k_yy = imq_kernel(squared_distances(y, y), base_c, scales)
        k_xy = imq_kernel(squared_distances(x, y), base_c, scales)
        within_x = (k_xx.sum() - k_xx.diagonal().sum()) / (n * (n - 1))
        within_y = (k_yy.sum() - k_yy.diagonal().sum()) / (m * (m - 1))
        return within_x + within_y - 2.0 * k_xy.mean()


@dataclass
class WAEConfig(Hyperparameters):
    lam: float = 10.0  # the paper's lambda, the weight of the MMD term (its MNIST runs)
    prior_var: float = 1.0  # sigma_z^2 of the prior N(0, sigma_z^2 I); also sets the kernel scale
    rec_scale: float = 1.0  # weight of the reconstruction cost; the authors' code uses 0.05 (DEFAULTS.md)

    def __post_init__(self):
        super().__post_init__()
        self.require(math.isfinite(self.lam) and self.lam >= 0, "lam", "must be a finite number >= 0")
        self.require(math.isfinite(self.prior_var) and self.prior_var > 0, "prior_var", "must be a finite number > 0")
        self.require(math.isfinite(self.rec_scale) and self.rec_scale > 0, "rec_scale", "must be a finite number > 0")


class WAE(AutoEncoder):
    Config = WAEConfig
    # `aebench tune`: five decades in log scale on the plain SSE (rec_scale 1). The authors' MNIST setting,
    # lambda 10 on 0.05 * SSE, is lam 10 / 0.05 = 200 here, inside; the range reaches 2000 and beyond.
    search_space = {"lam": FloatRange(0.1, 10000.0, log=True)}
    # standard: the value `tune` chose on mnist's validation split (results/reference/tune-standard-mnist).
    profile_defaults = {"standard": {"lam": 3.0}}

    def __init__(self, image_shape, config: WAEConfig):
        super().__init__(image_shape, config)
        self.encoder = build_encoder(config.arch, image_shape, config.latent_dim)  # deterministic: no variance head
        self.decoder = build_decoder(config.arch, config.latent_dim, image_shape)

    def prior_sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return math.sqrt(self.config.prior_var) * self.noise((n, self.config.latent_dim), generator)

    def encode(self, x):
        return self.encoder(x)

    def decode(self, z):
        return torch.sigmoid(self.decoder(z))

    def sample(self, n, generator=None):
        return self.decode(self.prior_sample(n, generator))

    def loss(self, x):
        z = self.encode(x)
        rec = per_image_sum((self.decode(z) - x) ** 2).mean()
        mmd = imq_mmd(z, self.prior_sample(len(x)), self.config.prior_var)
        return {"loss": self.config.rec_scale * rec + self.config.lam * mmd, "rec": rec, "mmd": mmd}
