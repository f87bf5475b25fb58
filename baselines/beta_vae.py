"""beta-VAE (Higgins et al., ICLR 2017): the VAE with its KL term weighted by beta.

loss = rec + beta * kl. Everything else (networks, likelihood, encode as the posterior mean, sampling
from N(0, I)) is the VAE's own code: this class only says where the KL weight comes from.
beta = 1 is exactly the VAE; beta > 1 trades reconstruction for a posterior closer to the prior.
Defaults and their sources: baselines/DEFAULTS.md.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from baselines.vae import VAE, VAEConfig


@dataclass
class BetaVAEConfig(VAEConfig):
    beta: float = 4.0  # Higgins et al. 2017, their 2D-shapes (dSprites) experiments

    def __post_init__(self):
        super().__post_init__()
        self.require(math.isfinite(self.beta) and self.beta > 0, "beta", "must be a finite number > 0")


class BetaVAE(VAE):
    Config = BetaVAEConfig

    @property
    def kl_weight(self) -> float:  # VAE.loss reads this in place of its class attribute (1.0)
        return self.config.beta
