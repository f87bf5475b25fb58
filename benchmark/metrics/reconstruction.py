"""Reconstruction error: the paper's per-image sum of squared error, and the per-pixel mean."""
from __future__ import annotations

import torch


def squared_errors(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Per-image sum of squared error, shape (N,)."""
    return ((x_hat.float() - x.float()) ** 2).flatten(1).sum(1)


def reconstruction_errors(x_hat: torch.Tensor, x: torch.Tensor) -> dict[str, float]:
    """recon_sse: mean over images of the per-image SSE (the paper's number); recon_mse: per pixel."""
    sse = squared_errors(x_hat, x)
    return {"recon_sse": sse.mean().item(), "recon_mse": sse.mean().item() / x[0].numel()}
