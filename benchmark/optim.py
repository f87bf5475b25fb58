"""Optimisers the loop offers: plain Adam, and the SWAE/VampPrior papers' "AdamNormGrad"."""
from __future__ import annotations

import torch

from benchmark.errors import UserError, choices


class AdamNormGrad(torch.optim.Adam):
    """Adam on gradients that are first divided, parameter by parameter, by their L2 norm."""

    EPS = 1e-8

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.grad.div_(p.grad.norm() + self.EPS)
        return super().step(closure)


OPTIMIZERS = {"adam": torch.optim.Adam, "adam-normgrad": AdamNormGrad}


def make_optimizer(name: str, params, lr: float, betas=(0.9, 0.999)) -> torch.optim.Optimizer:
    if name not in OPTIMIZERS:
        raise UserError(f"unknown optimizer '{name}'; choices: {choices(OPTIMIZERS)}")
    return OPTIMIZERS[name](params, lr=lr, betas=betas)
