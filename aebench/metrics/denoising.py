"""Denoising: how far reconstruct(noisy x) lands from the CLEAN x, at several Gaussian noise levels.

Row names: denoise_sse_s{sigma} (e.g. denoise_sse_s0.1), the per-image sum of squared error averaged
over the images, the same unit as recon_sse; at sigma 0 it equals recon_sse. The noisy input is
clip(x + sigma * noise, 0, 1) so it stays in the models' input domain. One seeded standard-normal draw
is scaled for every sigma (common random numbers: the curve over sigma is smooth and repeatable).
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from aebench.metrics.batching import batched
from aebench.metrics.declarations import DENOISE_SSE
from aebench.metrics.reconstruction import squared_errors

METRICS = (DENOISE_SSE,)  # what this module computes (declared in declarations.py: torch-free)


def denoise_metric_name(sigma: float) -> str:
    return DENOISE_SSE.format(sigma=f"{sigma:g}")


def seeded_noise(shape, seed: int) -> torch.Tensor:
    """Standard normal noise drawn on the CPU from its own generator: the same on every device."""
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def noisy(x: torch.Tensor, sigma: float, noise: torch.Tensor) -> torch.Tensor:
    return (x + sigma * noise.to(x.device)).clamp(0, 1)


def denoising_per_image(reconstruct: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, sigmas,
                        seed: int = 0, batch_size: int = 1000) -> dict[str, np.ndarray]:
    """{denoise_sse_s<sigma>: each image's SSE of reconstruct(noisy x) against x}, float64, in x's order."""
    noise = seeded_noise(x.shape, seed)
    clean = x.cpu()
    return {denoise_metric_name(sigma): squared_errors(batched(reconstruct, noisy(x, sigma, noise), batch_size),
                                                       clean).double().numpy()
            for sigma in sigmas}


def denoising_errors(reconstruct: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, sigmas,
                     seed: int = 0, batch_size: int = 1000) -> dict[str, float]:
    """{denoise_sse_s<sigma>: mean per-image SSE of reconstruct(noisy x) against x}."""
    return {name: float(values.mean())
            for name, values in denoising_per_image(reconstruct, x, sigmas, seed, batch_size).items()}
