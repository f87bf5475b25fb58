"""Reconstruction error: the paper's per-image sum of squared error, and the per-pixel mean."""
from __future__ import annotations

import numpy as np
import torch

from aebench.metrics.declarations import RECON_MSE, RECON_SSE

METRICS = (RECON_SSE, RECON_MSE)  # what this module computes (declared in declarations.py: torch-free)


def squared_errors(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Per-image sum of squared error, shape (N,)."""
    return ((x_hat.float() - x.float()) ** 2).flatten(1).sum(1)


def reconstruction_per_image(x_hat: torch.Tensor, x: torch.Tensor) -> dict[str, np.ndarray]:
    """{recon_sse: each image's SSE, recon_mse: the same per pixel}, float64, in the images' order."""
    sse = squared_errors(x_hat, x).double().numpy()
    return {RECON_SSE.name: sse, RECON_MSE.name: sse / x[0].numel()}


def reconstruction_errors(x_hat: torch.Tensor, x: torch.Tensor) -> dict[str, float]:
    """recon_sse: mean over images of the per-image SSE (the paper's number); recon_mse: per pixel."""
    return {name: float(values.mean()) for name, values in reconstruction_per_image(x_hat, x).items()}
