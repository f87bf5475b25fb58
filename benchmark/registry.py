"""Model registry: the one place that maps a user-facing name to a model class. One line per model.

It sits above both model folders (models/ holds the contract and SWAE, baselines/ builds on models/),
so neither folder imports the other upward.
"""
from __future__ import annotations

from baselines.beta_vae import BetaVAE
from baselines.vae import VAE
from baselines.vampprior import VampPrior
from baselines.wae import WAE
from benchmark.errors import UserError, choices
from models.contract import AutoEncoder
from models.swae import SWAE, SWAEXZ, SWAEZRec

MODELS: dict[str, type[AutoEncoder]] = {
    "swae": SWAE,
    "vae": VAE,
    "beta-vae": BetaVAE,
    "wae": WAE,
    "vampprior": VampPrior,
}
# SWAE's objective ablation (models/swae.py): named on request (--models swae,swae-xz,swae-zrec),
# never part of the default set of models a grid runs.
ABLATIONS: dict[str, type[AutoEncoder]] = {
    "swae-xz": SWAEXZ,
    "swae-zrec": SWAEZRec,
}


def known_models() -> dict[str, type[AutoEncoder]]:
    """Every name a run may give (--models, --set, a study's [hparams]); read at each call, so that a
    model registered after import counts."""
    return MODELS | ABLATIONS


def get_model_class(name: str) -> type[AutoEncoder]:
    known = known_models()
    if name not in known:
        raise UserError(f"unknown model '{name}'; choices: {choices(known)}")
    return known[name]


def build_model(name: str, image_shape, overrides: dict | None = None) -> AutoEncoder:
    cls = get_model_class(name)
    return cls(image_shape, cls.Config.from_overrides(overrides or {}, name))
