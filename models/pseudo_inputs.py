"""Learnable pseudo-inputs in data space, shared by the priors that use them (SWAE, VampPrior).

A model mixes in PseudoInputs and owns `self.pseudo_inputs` (K x C x H x W, an nn.Parameter); its
config derives from PseudoInputsConfig, which declares K and init_noise, validates them and rejects
a K larger than the training set before any run starts (the check_data hook). The mixin starts them at K distinct random training images plus
N(0, init_noise^2) noise (the `prepare` data hook) and projects them back onto [0, 1] after every
optimiser step (`after_step`): a projection, rather than a clamp in the forward pass, keeps a pixel
that touched 0 or 1 trainable instead of freezing its gradient.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from models.contract import HyperparameterError, Hyperparameters


def require_pseudo_input_settings(config) -> None:
    """Validation of K and init_noise, for a config's __post_init__."""
    config.require(isinstance(config.K, int) and config.K >= 1, "K", "must be an integer >= 1")
    config.require(math.isfinite(config.init_noise) and config.init_noise >= 0, "init_noise",
                   "must be a finite number >= 0")


def check_pseudo_input_count(config, n_train: int) -> None:
    """K distinct training images are needed to start from: fail clearly when there are fewer."""
    if config.K > n_train:
        raise HyperparameterError(
            f"{type(config).__qualname__}.K = {config.K}: must be <= the number of training images ({n_train}), "
            f"since the pseudo-inputs start from K distinct training images; lower it with --set MODEL.K=N")


@dataclass
class PseudoInputsConfig(Hyperparameters):
    """The hyperparameters every pseudo-input prior has; a model may change the default of K."""

    K: int = 100  # number of pseudo-inputs (mixture components of the prior); must be <= training images
    init_noise: float = 0.01  # std of the Gaussian noise added to the training images they start from

    def __post_init__(self):
        super().__post_init__()
        require_pseudo_input_settings(self)

    def check_data(self, n_train: int) -> None:
        check_pseudo_input_count(self, n_train)  # K <= training images, before any run starts


class PseudoInputs:
    """Mixin for an AutoEncoder with `self.pseudo_inputs` and a config with K and init_noise."""

    def prepare(self, train_x: torch.Tensor, generator: torch.Generator) -> None:
        check_pseudo_input_count(self.config, len(train_x))
        k = self.config.K
        chosen = torch.randperm(len(train_x), generator=generator)[:k]
        noise = self.config.init_noise * torch.randn((k, *self.image_shape), generator=generator)
        start = train_x[chosen.to(train_x.device)].to(self.device) + noise.to(self.device)
        with torch.no_grad():
            self.pseudo_inputs.copy_(start.clamp(0.0, 1.0))

    def after_step(self) -> None:
        with torch.no_grad():
            self.pseudo_inputs.clamp_(0.0, 1.0)
