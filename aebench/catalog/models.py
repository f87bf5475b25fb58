"""Model registry: the one place that maps a user-facing name to a model class. One line per built-in
model; installed plug-ins and `package.module:Class` names come through aebench.catalog.plugins.

It sits above both model folders (models/ holds the contract and SWAE, baselines/ builds on models/),
so neither folder imports the other upward.
"""
from __future__ import annotations

from aebench.catalog.plugins import PluginModel, import_model_class, installed_models, is_class_path
from aebench.errors import UserError, choices
from baselines.beta_vae import BetaVAE
from baselines.vae import VAE
from baselines.vampprior import VampPrior
from baselines.wae import WAE
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


def builtin_models() -> dict[str, type[AutoEncoder]]:
    return MODELS | ABLATIONS


def plugin_models() -> dict[str, PluginModel]:
    """The installed plug-in models (entry points of the group aebench.models), by name; never a built-in's."""
    return installed_models(frozenset(builtin_models()))


def known_models() -> list[str]:
    """Every name a run may give (--models, --set, a study's [hparams]) besides `module:Class` names: the
    built-in models and the installed plug-ins; read at each call, so that a model registered after
    import counts."""
    return [*builtin_models(), *plugin_models()]


def is_known_model(name: str) -> bool:
    return name in known_models() or is_class_path(name)


def get_model_class(name: str) -> type[AutoEncoder]:
    """The class of a built-in name, an installed plug-in's name or a `package.module:Class` name."""
    if name in builtin_models():
        return builtin_models()[name]
    if is_class_path(name):
        return import_model_class(name, name)
    if name in (plugins := plugin_models()):
        return import_model_class(plugins[name].target, name)
    raise UserError(f"unknown model '{name}'; choices: {choices(known_models())}, or a plug-in's "
                    "package.module:Class")


def build_model(name: str, image_shape, overrides: dict | None = None) -> AutoEncoder:
    cls = get_model_class(name)
    return cls(image_shape, cls.Config.from_overrides(overrides or {}, name))
