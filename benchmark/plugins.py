"""Models from outside the suite: installed plug-ins (entry points) and `package.module:Class` names.

A package that declares

    [project.entry-points."aebench.models"]
    mytoy = "mytoy:MyToy"

makes `--models mytoy` work like a built-in name once installed; `--models mytoy.models:MyToy` names a
class on the import path without any entry point. Either must be a models.contract.AutoEncoder
subclass with a Config dataclass and the contract's methods, checked when the name is resolved
(benchmark.model_check then tries them on the grid's data before any run).

A plug-in never shadows a built-in: an entry point under a built-in's name is left out and said so on
stderr once per process (its class stays reachable by its `module:Class` name). A plug-in that fails
to import breaks no other command: the error is raised only when its name is used.
"""
from __future__ import annotations

import dataclasses
import functools
import importlib
import sys
from dataclasses import dataclass
from importlib import metadata

from benchmark.errors import UserError
from models.contract import AutoEncoder, Hyperparameters

MODEL_GROUP = "aebench.models"
CONTRACT_METHODS = ("encode", "decode", "sample", "loss")  # what every model must implement


@dataclass(frozen=True)
class PluginModel:
    name: str
    target: str  # "module:Class"
    package: str  # the distribution that declares it ("" when unknown)


def is_class_path(name: str) -> bool:
    """`package.module:Class`, as --models takes it without an entry point."""
    module, sep, attribute = name.partition(":")
    return bool(sep and module and attribute)


def import_model_class(target: str, label: str) -> type[AutoEncoder]:
    """The AutoEncoder subclass that `module:Class` names, or UserError saying what is wrong with it."""
    module_name, _, attribute = target.partition(":")
    try:
        found = importlib.import_module(module_name)
        for part in attribute.split("."):
            found = getattr(found, part)
    except Exception as e:  # an import error, a missing attribute, an error raised while importing
        raise UserError(f"model '{label}': cannot load {target} ({type(e).__name__}: {e})") from None
    if not (isinstance(found, type) and issubclass(found, AutoEncoder)):
        raise UserError(f"model '{label}': {target} is not a subclass of models.contract.AutoEncoder")
    config_class = getattr(found, "Config", None)
    if not (isinstance(config_class, type) and issubclass(config_class, Hyperparameters)
            and dataclasses.is_dataclass(config_class)):
        raise UserError(f"model '{label}': its class has no Config (a dataclass subclassing "
                        "models.contract.Hyperparameters)")
    missing = [m for m in CONTRACT_METHODS if getattr(found, m) is getattr(AutoEncoder, m)]
    if missing:
        raise UserError(f"model '{label}': does not implement {', '.join(missing)} (models.contract.AutoEncoder)")
    return found


def _declared() -> list[PluginModel]:
    entries = metadata.entry_points(group=MODEL_GROUP)
    return [PluginModel(e.name, e.value, e.dist.name if getattr(e, "dist", None) else "") for e in entries]


@functools.lru_cache(maxsize=None)
def installed_models(builtin: frozenset[str]) -> dict[str, PluginModel]:
    """The installed plug-in models by name; one under a built-in's name is left out, and said so once."""
    found = {}
    for plugin in _declared():
        if plugin.name in builtin:
            source = plugin.package or "an installed package"
            print(f"warning: plug-in model '{plugin.name}' ({plugin.target}, from {source}) is not used: "
                  f"'{plugin.name}' is a built-in model; use --models {plugin.target}", file=sys.stderr)
            continue
        found[plugin.name] = plugin
    return found
