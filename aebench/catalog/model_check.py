"""The model contract (models/contract.py), checked on a model from outside the suite before any run.

aebench.catalog.plugins checked its class (a Config, the four methods) when its name was resolved; here a
plug-in is built with its settings on the grid's dataset and asked, on a few
training images, for what the loop and the evaluation will ask of it: encode gives (N, latent_dim),
decode gives images of the data's shape in [0, 1], sample(n) gives n of them, loss gives a dict whose
"loss" is a finite scalar that can be differentiated, every other term a finite scalar. The first
breach is one UserError naming the model and what is wrong, so that `run` ends with exit code 2
before anything is written rather than failing every cell. Built-in models are covered by tests.
"""
from __future__ import annotations

import math

import torch

from aebench.data.splits import DataSplits
from aebench.errors import UserError
from models.contract import AutoEncoder

PROBE_IMAGES = 8


def check_model_contract(name: str, cls: type[AutoEncoder], hparams: dict, data: DataSplits) -> None:
    """UserError naming the first breach of the contract by `cls`, built with `hparams` on `data`."""
    model = _built(name, cls, hparams, data)
    x = data.train_x[:PROBE_IMAGES]
    shape, latent = tuple(data.image_shape), model.config.latent_dim
    with torch.no_grad():
        codes = _called(name, "encode", lambda: model.encode(x))
        _expect(name, "encode", codes, (len(x), latent))
        images = _called(name, "decode", lambda: model.decode(codes))
        _expect(name, "decode", images, (len(x), *shape), unit_interval=True)
        samples = _called(name, "sample", lambda: model.sample(len(x), torch.Generator().manual_seed(0)))
        _expect(name, f"sample({len(x)})", samples, (len(x), *shape), unit_interval=True)
    _check_loss(name, _called(name, "loss", lambda: model.loss(x)))


def _built(name: str, cls, hparams: dict, data: DataSplits) -> AutoEncoder:
    config = cls.Config.from_overrides(hparams, name)  # a bad value is the user's HyperparameterError already
    model = _called(name, "its constructor", lambda: cls(data.image_shape, config))
    if not isinstance(model, AutoEncoder):
        raise UserError(f"model '{name}': its class does not build a models.contract.AutoEncoder")
    model = model.to(data.train_x.device)
    _called(name, "prepare", lambda: model.prepare(data.train_x, torch.Generator().manual_seed(0)))
    return model


def _called(name: str, what: str, call):
    try:
        return call()
    except UserError:
        raise
    except Exception as e:  # whatever the plug-in raises is its breach, named
        raise UserError(f"model '{name}': {what} raised {type(e).__name__}: {e}") from None


def _expect(name: str, what: str, value, shape: tuple, unit_interval: bool = False) -> None:
    if not isinstance(value, torch.Tensor):
        raise UserError(f"model '{name}': {what} returned {type(value).__name__}, not a tensor")
    if tuple(value.shape) != shape:
        raise UserError(f"model '{name}': {what} returned shape {tuple(value.shape)}, expected {shape}")
    if not torch.isfinite(value).all():
        raise UserError(f"model '{name}': {what} returned non-finite values")
    if unit_interval and (value.min() < 0 or value.max() > 1):
        raise UserError(f"model '{name}': {what} returned values outside [0, 1] "
                        f"({value.min().item():.3g} to {value.max().item():.3g}); images must be in [0, 1]")


def _check_loss(name: str, terms) -> None:
    if not isinstance(terms, dict) or "loss" not in terms:
        raise UserError(f"model '{name}': loss() must return a dict with a 'loss' entry, got {type(terms).__name__}")
    for term, value in terms.items():
        if not (isinstance(value, torch.Tensor) and value.numel() == 1):
            raise UserError(f"model '{name}': loss term '{term}' is not a scalar tensor")
        if not math.isfinite(value.item()):
            raise UserError(f"model '{name}': loss term '{term}' is not finite ({value.item()}) on training images")
    if not terms["loss"].requires_grad:
        raise UserError(f"model '{name}': its loss cannot be differentiated (it does not depend on the parameters)")
