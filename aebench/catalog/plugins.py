"""Models from outside the suite: installed plug-ins (entry points) and `package.module:Class` names.

A package that declares

    [project.entry-points."aebench.models"]
    mytoy = "mytoy:MyToy"

makes `--models mytoy` work like a built-in name once installed; `--models mytoy.models:MyToy` names a
class on the import path without any entry point. Either must be a models.contract.AutoEncoder
subclass with a Config dataclass and the contract's methods, checked when the name is resolved
(aebench.catalog.model_check then tries them on the grid's data before any run).

A plug-in never shadows a built-in: an entry point under a built-in's name is left out and said so on
stderr once per process (aebench/plumbing/entry_points.py; its class stays reachable by its
`module:Class` name). A plug-in that fails
to import breaks no other command: the error is raised only when its name is used.
"""
from __future__ import annotations

import dataclasses

from aebench.errors import UserError
from aebench.plumbing.entry_points import Declared, TargetImportError, declared, import_target, is_target
from models.contract import AutoEncoder, Hyperparameters

MODEL_GROUP = "aebench.models"
CONTRACT_METHODS = ("encode", "decode", "sample", "loss")  # what every model must implement
PluginModel = Declared  # an installed plug-in model: its name, "module:Class" and the declaring package
is_class_path = is_target


def import_model_class(target: str, label: str) -> type[AutoEncoder]:
    """The AutoEncoder subclass that `module:Class` names, or UserError saying what is wrong with it."""
    try:
        found = import_target(target)
    except TargetImportError as e:
        raise UserError(f"model '{label}': {e}") from None
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


def installed_models(builtin: frozenset[str]) -> dict[str, PluginModel]:
    """The installed plug-in models by name; one under a built-in's name is left out, and said so once."""
    return declared(MODEL_GROUP, builtin, "model", "use --models {target}")
