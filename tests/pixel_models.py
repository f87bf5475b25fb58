"""Autoencoders whose answers are known, for the evaluation's tests: the code of an image is its pixels."""
import numpy as np
import torch

from models.contract import AutoEncoder, Hyperparameters


class PixelIdentity(AutoEncoder):
    """A perfect autoencoder: the latent is the image itself; samples are uniform noise."""

    def __init__(self, image_shape):
        super().__init__(image_shape, Hyperparameters(latent_dim=int(np.prod(image_shape))))
        self.unused = torch.nn.Parameter(torch.zeros(1))

    def encode(self, x):
        return x.flatten(1)

    def decode(self, z):
        return z.view(len(z), *self.image_shape)

    def sample(self, n, generator=None):
        return torch.rand((n, *self.image_shape), generator=generator)
