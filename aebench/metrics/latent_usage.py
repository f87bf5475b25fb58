"""Latent usage: how many latent dimensions does the encoder actually use?

A VAE whose KL term wins ("posterior collapse") maps every image to the same value on some latent
dimensions; those dimensions carry no information however large the latent space. Burda, Grosse &
Salakhutdinov, "Importance Weighted Autoencoders" (ICLR 2016), measure this with the
activity of each unit u,

    A_u = Cov_x( E_{u ~ q(u|x)}[u] ),

the variance over the data of the posterior mean, and count a unit as active when A_u > 10^-2.
Here the codes are the models' deterministic encode() outputs: the posterior means for the VAEs,
the encoder's output for the deterministic autoencoders, so one statistic covers every model. The
variance is the empirical one over the given (test) images (ddof=0). The threshold is in the units of
the latent space: it suits models whose prior is a unit Gaussian, as in the paper.
"""
from __future__ import annotations

import numpy as np

from aebench.metrics.declarations import ACTIVE_UNITS

METRICS = (ACTIVE_UNITS,)  # what this module computes (declared in declarations.py: torch-free)

ACTIVITY_THRESHOLD = 0.01  # Burda et al. 2016: a unit is active when A_u > 10^-2


def _codes(codes) -> np.ndarray:
    z = np.asarray(codes, dtype=np.float64)
    if z.ndim != 2:
        raise ValueError(f"codes must have shape (n_images, latent_dim), got {z.shape}")
    if len(z) < 2:  # one image has no variance
        raise ValueError(f"the activity of a unit needs at least 2 images, got {len(z)}")
    if not np.isfinite(z).all():
        raise ValueError("codes hold NaN or infinite values")
    return z


def unit_activity(codes) -> np.ndarray:
    """A_u for each latent dimension: the variance over the images of its code."""
    return _codes(codes).var(axis=0)


def active_units(codes, threshold: float = ACTIVITY_THRESHOLD) -> int:
    """Number of latent dimensions whose activity A_u is above threshold (strictly)."""
    if not threshold >= 0:  # also rejects NaN
        raise ValueError(f"threshold must be >= 0, got {threshold!r}")
    return int((unit_activity(codes) > threshold).sum())
