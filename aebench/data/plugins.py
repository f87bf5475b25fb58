"""Datasets from installed packages: the entry-point group `aebench.datasets`.

A package that declares

    [project.entry-points."aebench.datasets"]
    mydata = "mypackage.data:SPEC"

makes `--dataset mydata` work like a built-in name. SPEC is an aebench.data.splits.DatasetSpec (or a
function of no arguments that returns one): its `load(roots)` returns RawData, its `locate(roots)` None
or why the data is not here, and n_val / n_test its split when it has no standard test set. Its name
in results is the entry point's name. A declaration under a built-in's name is left out and said so.
"""
from __future__ import annotations

import dataclasses

from aebench.data.splits import DatasetSpec
from aebench.errors import UserError
from aebench.plumbing.entry_points import Declared, TargetImportError, declared, import_target

DATASET_GROUP = "aebench.datasets"


def installed_datasets(builtin: frozenset[str]) -> dict[str, Declared]:
    return declared(DATASET_GROUP, builtin, "dataset", "")


def plugin_spec(plugin: Declared) -> DatasetSpec:
    """The DatasetSpec a plug-in declares, under the plug-in's name, or UserError saying what is wrong."""
    try:
        found = import_target(plugin.target)
        if callable(found) and not isinstance(found, DatasetSpec):
            found = found()
    except TargetImportError as e:
        raise UserError(f"dataset '{plugin.name}': {e}") from None
    except Exception as e:  # the plug-in's own function failed
        raise UserError(f"dataset '{plugin.name}': {plugin.target}() failed ({type(e).__name__}: {e})") from None
    if not isinstance(found, DatasetSpec):
        raise UserError(f"dataset '{plugin.name}': {plugin.target} is not an aebench.data.splits.DatasetSpec "
                        f"(nor a function returning one)")
    return dataclasses.replace(found, name=plugin.name, key="")
