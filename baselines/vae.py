"""VAE (Kingma & Welling 2014): Gaussian encoder, standard normal prior, Bernoulli or Gaussian likelihood.

loss = rec + warmup_weight * kl_weight * kl, each summed over pixels / latent dims and averaged over
the batch. warmup_weight rises linearly from 1/W to 1 over the first W = warmup_epochs training
epochs (the training loop sets it; KL annealing as the VampPrior authors do it), and is 1 after.
encode() returns the posterior mean, not a sample (the SWAE authors sampled; we do not).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from models.contract import AutoEncoder, Hyperparameters, IntRange, per_image_sum
from models.likelihoods import bernoulli_nll
from models.networks import build_decoder, build_encoder

LIKELIHOODS = ("bernoulli", "gaussian")
# The KL warm-up lengths `aebench tune` searches, in log scale: 1 epoch (the same as none: full weight from
# the first epoch), the profiles' 20, the VampPrior authors' 100 inside, up to 200, the paper profile's cap
# on epochs (a longer warm-up would train a VAE that never reaches its full KL weight); widened no further
# than the training's epochs (epochs_cap), for the same reason.
WARMUP_EPOCHS_RANGE = IntRange(1, 200, log=True, epochs_cap=True)


@dataclass
class VAEConfig(Hyperparameters):
    likelihood: str = "bernoulli"
    sigma: float = 0.1  # decoder std for the Gaussian likelihood
    warmup_epochs: int = 0  # KL warm-up length (the profiles set it; 0: none)

    def __post_init__(self):
        super().__post_init__()
        self.require(isinstance(self.warmup_epochs, int) and self.warmup_epochs >= 0, "warmup_epochs",
                     "must be an integer >= 0")
        self.require(self.likelihood in LIKELIHOODS, "likelihood", f"must be one of {', '.join(LIKELIHOODS)}")
        self.require(self.sigma > 0, "sigma", "must be > 0")


class VAE(AutoEncoder):
    Config = VAEConfig
    kl_weight: float = 1.0  # beta-VAE changes only this
    search_space = {"warmup_epochs": WARMUP_EPOCHS_RANGE}  # `aebench tune`: the VAE's only own setting
    # standard: the value `tune` chose on mnist's validation split (results/reference/tune-standard-mnist).
    profile_defaults = {"standard": {"warmup_epochs": 100}}

    def __init__(self, image_shape, config: VAEConfig):
        super().__init__(image_shape, config)
        self.encoder = build_encoder(config.arch, image_shape, 2 * config.latent_dim)
        self.decoder = build_decoder(config.arch, config.latent_dim, image_shape)

    def posterior(self, x):
        """Mean and log-variance of q(z|x)."""
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        return mu, logvar

    def encode(self, x):
        return self.posterior(x)[0]

    def decode(self, z):
        return torch.sigmoid(self.decoder(z))

    def sample(self, n, generator=None):
        return self.decode(self.noise((n, self.config.latent_dim), generator))

    def reconstruction_term(self, logits, x):
        """-log p(x|z) per image, up to a constant for the Gaussian."""
        if self.config.likelihood == "bernoulli":
            return per_image_sum(bernoulli_nll(logits, x))
        return per_image_sum((torch.sigmoid(logits) - x) ** 2) / (2 * self.config.sigma ** 2)

    def kl_term(self, z, mu, logvar):
        """KL(q(z|x) || N(0, I)) in closed form, per image. z is unused here; VampPrior estimates with it."""
        return 0.5 * per_image_sum(mu ** 2 + logvar.exp() - 1 - logvar)

    def loss(self, x):
        mu, logvar = self.posterior(x)
        z = mu + (0.5 * logvar).exp() * torch.randn_like(mu)
        rec = self.reconstruction_term(self.decoder(z), x).mean()
        kl = self.kl_term(z, mu, logvar).mean()
        return {"loss": rec + self.warmup_weight * self.kl_weight * kl, "rec": rec, "kl": kl}
