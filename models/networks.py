"""Shared encoder and decoder bodies, chosen by an architecture name and the image shape.

Each builder returns a module: encoders map (N, C, H, W) to (N, out_dim); decoders map (N, latent)
to LOGITS shaped (N, C, H, W) (models apply the sigmoid, so Bernoulli losses can use the stable
logits form). Models never define their own bodies: they ask here.

Every body ends in Float32Output: under bf16 training (torch.autocast, aebench.plumbing.precision) its layers
compute in bfloat16, but what it hands the model is float32, so a model's objective (likelihood, KL,
MMD, mixture prior) is computed in float32 as in an fp32 run. In float32 the cast is a no-op.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from aebench.errors import UserError

HIDDEN_MLP = 256


class GatedDense(nn.Module):
    """h = (W x) * sigmoid(V x), the gated layer of the SWAE/VampPrior papers."""

    def __init__(self, n_in: int, n_out: int):
        super().__init__()
        self.h, self.g = nn.Linear(n_in, n_out), nn.Linear(n_in, n_out)

    def forward(self, x):
        return self.h(x) * self.g(x).sigmoid()


class GatedConv2d(nn.Module):
    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int):
        super().__init__()
        self.h = nn.Conv2d(c_in, c_out, kernel, stride, padding)
        self.g = nn.Conv2d(c_in, c_out, kernel, stride, padding)

    def forward(self, x):
        return self.h(x) * self.g(x).sigmoid()


class Reshape(nn.Module):
    def __init__(self, *shape: int):
        super().__init__()
        self.shape = shape

    def forward(self, x):
        return x.view(x.shape[0], *self.shape)


class ClampLogits(nn.Module):
    """Bounds the output probabilities to [margin, 1 - margin] by bounding the logits."""

    def __init__(self, margin: float):
        super().__init__()
        self.bound = math.log((1 - margin) / margin)

    def forward(self, logits):
        return logits.float().clamp(-self.bound, self.bound)  # float32: a bfloat16 bound would move the margin


class Float32Output(nn.Module):
    """The last step of every body: its output in float32 (bfloat16 under autocast; unchanged otherwise).
    It has no parameters, so the bodies' state-dict keys are those of the layers before it."""

    def forward(self, x):
        return x.float()


GATED_GREY_MARGIN = 1.0 / 512  # the papers clamp grey outputs of the gated decoder to [1/512, 1 - 1/512]


def _pixels(shape) -> int:
    return math.prod(shape)


def _require_divisible(shape, factor: int, arch: str) -> None:
    if shape[1] % factor or shape[2] % factor:
        raise UserError(f"architecture '{arch}' needs image height and width divisible by {factor}, got {shape[1:]}")


# --- mlp: small images such as 8x8 digits


def mlp_encoder(shape, out_dim):
    return nn.Sequential(nn.Flatten(), nn.Linear(_pixels(shape), HIDDEN_MLP), nn.ReLU(),
                         nn.Linear(HIDDEN_MLP, HIDDEN_MLP), nn.ReLU(), nn.Linear(HIDDEN_MLP, out_dim))


def mlp_decoder(latent_dim, shape):
    return nn.Sequential(nn.Linear(latent_dim, HIDDEN_MLP), nn.ReLU(), nn.Linear(HIDDEN_MLP, HIDDEN_MLP),
                         nn.ReLU(), nn.Linear(HIDDEN_MLP, _pixels(shape)), Reshape(*shape))


# --- conv: 28x28 and 32x32 (two stride-2 stages)


def conv_encoder(shape, out_dim):
    _require_divisible(shape, 4, "conv")
    c, h, w = shape
    return nn.Sequential(nn.Conv2d(c, 32, 4, 2, 1), nn.ReLU(), nn.Conv2d(32, 64, 4, 2, 1), nn.ReLU(),
                         nn.Flatten(), nn.Linear(64 * (h // 4) * (w // 4), 256), nn.ReLU(), nn.Linear(256, out_dim))


def conv_decoder(latent_dim, shape):
    _require_divisible(shape, 4, "conv")
    c, h, w = shape
    return nn.Sequential(nn.Linear(latent_dim, 256), nn.ReLU(), nn.Linear(256, 64 * (h // 4) * (w // 4)), nn.ReLU(),
                         Reshape(64, h // 4, w // 4), nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.ReLU(),
                         nn.ConvTranspose2d(32, c, 4, 2, 1))


# --- gated: the SWAE paper's networks (see docs/swae.md, "Paper-scale settings")


def gated_encoder(shape, out_dim):
    _require_divisible(shape, 4, "gated")
    c, h, w = shape
    return nn.Sequential(GatedConv2d(c, 32, 7, 1, 3), GatedConv2d(32, 32, 3, 2, 1), GatedConv2d(32, 64, 5, 1, 2),
                         GatedConv2d(64, 64, 3, 2, 1), GatedConv2d(64, 6, 3, 1, 1), nn.Flatten(),
                         nn.Linear(6 * (h // 4) * (w // 4), out_dim))


def gated_decoder(latent_dim, shape):
    c, h, w = shape
    layers = [GatedDense(latent_dim, 300), GatedDense(300, _pixels(shape)), Reshape(c, h, w),
              GatedConv2d(c, 64, 3, 1, 1), GatedConv2d(64, 64, 3, 1, 1), GatedConv2d(64, 64, 3, 1, 1),
              GatedConv2d(64, 64, 3, 1, 1), nn.Conv2d(64, c, 1)]
    if c == 1:
        layers.append(ClampLogits(GATED_GREY_MARGIN))
    return nn.Sequential(*layers)


ARCHITECTURES = {
    "mlp": (mlp_encoder, mlp_decoder),
    "conv": (conv_encoder, conv_decoder),
    "gated": (gated_encoder, gated_decoder),
}


def resolve_arch(arch: str, shape) -> str:
    """'auto' picks the MLP for small images (< 16 pixels a side) and the conv net otherwise."""
    if arch != "auto":
        return arch
    return "mlp" if min(shape[1:]) < 16 else "conv"


# Architectures whose convolutions run faster with channels-last weights on the CPU (measured by
# benchmarks/paper_step_cost.py --compare-memory-format; the same sums in another order). The conv
# architecture measured no faster (benchmarks/throughput.py), so it keeps the default layout.
CHANNELS_LAST = {"gated"}


def _laid_out(module: nn.Sequential, arch: str) -> nn.Module:
    module.append(Float32Output())
    return module.to(memory_format=torch.channels_last) if arch in CHANNELS_LAST else module


def build_encoder(arch: str, shape, out_dim: int) -> nn.Module:
    arch = resolve_arch(arch, shape)
    return _laid_out(ARCHITECTURES[arch][0](tuple(shape), out_dim), arch)


def build_decoder(arch: str, latent_dim: int, shape) -> nn.Module:
    arch = resolve_arch(arch, shape)
    return _laid_out(ARCHITECTURES[arch][1](latent_dim, tuple(shape)), arch)
