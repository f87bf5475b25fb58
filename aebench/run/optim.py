"""Optimisers the loop offers: plain Adam, and the SWAE/VampPrior papers' "AdamNormGrad".

Both run Adam's fused kernel (one pass over all parameters per step instead of a loop of small
per-parameter operations) where the parameters' device has one: the same update up to the rounding of
a fused multiply-add, measured faster by benchmarks/throughput.py.
"""
from __future__ import annotations

import torch

from aebench.errors import UserError, choices

FUSED_DEVICES = ("cpu", "cuda")


class AdamNormGrad(torch.optim.Adam):
    """Adam on gradients that are first divided, parameter by parameter, by their L2 norm."""

    EPS = 1e-8

    @torch.no_grad()
    def step(self, closure=None):
        grads = [p.grad for group in self.param_groups for p in group["params"] if p.grad is not None]
        if grads:  # every norm in one multi-tensor call, then every division in another
            norms = torch._foreach_norm(grads)
            torch._foreach_add_(norms, self.EPS)
            torch._foreach_div_(grads, norms)
        return super().step(closure)


OPTIMIZERS = {"adam": torch.optim.Adam, "adam-normgrad": AdamNormGrad}


def fused_supported(params: list[torch.Tensor]) -> bool:
    """Adam's fused kernel takes floating-point parameters on one of FUSED_DEVICES."""
    return bool(params) and all(p.is_floating_point() and p.device.type in FUSED_DEVICES for p in params)


def make_optimizer(name: str, params, lr: float, betas=(0.9, 0.999)) -> torch.optim.Optimizer:
    if name not in OPTIMIZERS:
        raise UserError(f"unknown optimizer '{name}'; choices: {choices(OPTIMIZERS)}")
    params = list(params)
    return OPTIMIZERS[name](params, lr=lr, betas=betas, fused=fused_supported(params) or None)
