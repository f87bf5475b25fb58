"""Which datasets a run may name, and loading one: the built-ins (aebench/data/builtin.py), a user's
own images (`npz:PATH`, `folder:PATH[@SIZE]`: aebench/data/own_images.py) and installed plug-ins
(aebench/data/plugins.py). Loading never downloads: see aebench/data/fetch.py.
"""
from __future__ import annotations

import os
from pathlib import Path

from aebench.data.builtin import BUILTIN_DATASETS
from aebench.data.own_images import is_own_images, own_images_spec
from aebench.data.plugins import installed_datasets, plugin_spec
from aebench.data.splits import DatasetSpec, DataSplits, make_splits
from aebench.errors import UserError, choices


def data_roots(data_root: str | os.PathLike | None = None) -> list[Path]:
    """Where IDX files are looked for: --data-root, else $AEBENCH_DATA, else ./data."""
    return [Path(data_root or os.environ.get("AEBENCH_DATA") or "data").expanduser()]


def plugin_datasets():
    """The installed plug-in datasets (entry points of the group aebench.datasets), by name."""
    return installed_datasets(frozenset(BUILTIN_DATASETS))


def known_datasets() -> list[str]:
    """Every name --dataset takes besides npz:PATH and folder:PATH: the built-ins and the plug-ins."""
    return [*BUILTIN_DATASETS, *plugin_datasets()]


def get_spec(name: str) -> DatasetSpec:
    if name in BUILTIN_DATASETS:
        return BUILTIN_DATASETS[name]
    if is_own_images(name):
        return own_images_spec(name)
    if name in (plugins := plugin_datasets()):
        return plugin_spec(plugins[name])
    raise UserError(f"unknown dataset '{name}'; choices: {choices(known_datasets())}, or your own images as "
                    "npz:PATH or folder:PATH[@SIZE]")


def dataset_key(name: str) -> str:
    """The dataset's name in run ids, results and caches: its own name, or for a user's images a name
    made from their content (portable: the same file elsewhere gives the same key)."""
    spec = get_spec(name)
    return spec.key or spec.name


def name_for_key(key: str, arguments) -> str:
    """The --dataset argument among `arguments` (an experiment's config.json) whose key is `key`, so that a
    report can load a user's images again; `key` itself when none is (a registered dataset's key is its name)."""
    for argument in arguments:
        try:
            if is_own_images(argument) and dataset_key(argument) == key:
                return argument
        except UserError:  # moved or deleted since the run
            continue
    return key


def availability(name: str, data_root=None) -> str | None:
    """None when the dataset can be loaded here, else the reason why not."""
    return get_spec(name).locate(data_roots(data_root))


def load_dataset(name: str, data_root=None, binarize: bool = False) -> DataSplits:
    """Load a dataset into memory (never downloads). Validation and test are binarised once (fixed seed)."""
    spec = get_spec(name)
    return make_splits(spec, spec.load(data_roots(data_root)), binarize)
