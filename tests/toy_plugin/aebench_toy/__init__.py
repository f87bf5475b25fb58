"""A toy autoencoder outside the suite (one linear map each way), and models that each break the contract
once, for tests/test_plugins.py. A user's plug-in looks like MyToy: a Config, encode, decode, sample, loss.
Not a test module (pytest never collects it): an installed package standing in for a user's own, so it holds
no asserts; tests/test_plugins.py and tests/test_against.py assert what the suite does with it."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from models.contract import AutoEncoder, FloatRange, Hyperparameters, per_image_sum


@dataclass
class MyToyConfig(Hyperparameters):
    noise: float = 0.1  # std of the noise added to the codes while training

    def __post_init__(self):
        super().__post_init__()
        self.require(self.noise >= 0, "noise", "must be >= 0")


class MyToy(AutoEncoder):
    """A linear autoencoder with a little code noise."""

    Config = MyToyConfig
    search_space = {"noise": FloatRange(0.01, 1.0, log=True)}

    def __init__(self, image_shape, config: MyToyConfig):
        super().__init__(image_shape, config)
        pixels = int(torch.tensor(image_shape).prod())
        self.encoder = nn.Linear(pixels, config.latent_dim)
        self.decoder = nn.Linear(config.latent_dim, pixels)

    def encode(self, x):
        return self.encoder(x.flatten(1))

    def decode(self, z):
        return torch.sigmoid(self.decoder(z)).view(len(z), *self.image_shape)

    def sample(self, n, generator=None):
        return self.decode(self.noise((n, self.config.latent_dim), generator))

    def loss(self, x):
        z = self.encode(x)
        rec = per_image_sum((self.decode(z + self.config.noise * torch.randn_like(z)) - x) ** 2).mean()
        return {"loss": rec, "rec": rec}


class NoLoss(MyToy):
    loss = AutoEncoder.loss  # the contract's unimplemented method


class WrongShape(MyToy):
    def decode(self, z):
        return torch.sigmoid(self.decoder(z))  # flat: (N, pixels) instead of (N, C, H, W)


class NonFiniteLoss(MyToy):
    def loss(self, x):
        terms = super().loss(x)
        return {**terms, "loss": terms["loss"] * float("nan")}


class NoConfig(MyToy):
    Config = None


class NotAModel(nn.Module):
    pass
