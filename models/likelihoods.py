"""Bernoulli negative log-likelihood from logits, as one autograd function.

Per element: softplus(l) - x*l = max(l, 0) - x*l + log(1 + exp(-|l|)), the stable form
torch.nn.functional.binary_cross_entropy_with_logits computes, with gradient sigmoid(l) - x.
It exists because that library call spends most of its time in log1p, which this CPU build runs about
7x slower than log (benchmarks/throughput.py; measured 0.77 ms of an 8.6 ms MLP-VAE step).
log(1 + e) instead of log1p(e) differs only where e = exp(-|l|) < 2^-24, by less than e: under 6e-8
per pixel, far below the float32 rounding of a per-image sum. The gradient is the library's formula.
"""
from __future__ import annotations

import torch


class _BernoulliNLL(torch.autograd.Function):
    @staticmethod
    def forward(ctx, logits, target):
        ctx.save_for_backward(logits, target)
        softplus = logits.abs().neg_().exp_().add_(1.0).log_().add_(logits.clamp_min(0.0))
        return softplus.sub_(logits * target)

    @staticmethod
    def backward(ctx, grad):
        logits, target = ctx.saved_tensors
        grad_logits = torch.sigmoid(logits).sub_(target).mul_(grad) if ctx.needs_input_grad[0] else None
        return grad_logits, None  # the images are data: never differentiated


def bernoulli_nll(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Elementwise -log p(target | logits) of a Bernoulli; target in [0, 1] (grey values allowed)."""
    return _BernoulliNLL.apply(logits, target)
