"""Model registry: the one place that maps a user-facing name to a model class. One line per model."""
from __future__ import annotations

from baselines.vae import VAE
from benchmark.errors import UserError, choices
from models.contract import AutoEncoder

MODELS: dict[str, type[AutoEncoder]] = {
    "vae": VAE,
}


def get_model_class(name: str) -> type[AutoEncoder]:
    if name not in MODELS:
        raise UserError(f"unknown model '{name}'; choices: {choices(MODELS)}")
    return MODELS[name]


def build_model(name: str, image_shape, overrides: dict | None = None) -> AutoEncoder:
    cls = get_model_class(name)
    return cls(image_shape, cls.Config.from_overrides(overrides or {}, name))
