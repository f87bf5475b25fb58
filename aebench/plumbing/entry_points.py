"""Plug-ins: what installed packages declare under an entry-point group, and `module:attribute` names.

One place for what every kind of plug-in shares (models in aebench/catalog/plugins.py, datasets in
aebench/data/plugins.py): reading a group, leaving out a declaration under a built-in's name (said once
on stderr: a plug-in never shadows a built-in silently), and importing what a declaration names.
"""
from __future__ import annotations

import functools
import importlib
import sys
from dataclasses import dataclass
from importlib import metadata


@dataclass(frozen=True)
class Declared:
    name: str
    target: str  # "module:attribute"
    package: str  # the distribution that declares it ("" when unknown)


class TargetImportError(Exception):
    """A `module:attribute` that does not import; the message says why (the caller names the plug-in)."""


def is_target(name: str) -> bool:
    """`package.module:attribute`, as --models takes a class without an entry point."""
    module, sep, attribute = name.partition(":")
    return bool(sep and module and attribute and "/" not in module)


def import_target(target: str):
    """The object that `module:attribute` names (attribute may be dotted)."""
    module_name, _, attribute = target.partition(":")
    try:
        found = importlib.import_module(module_name)
        for part in attribute.split("."):
            found = getattr(found, part)
    except Exception as e:  # an import error, a missing attribute, an error raised while importing
        raise TargetImportError(f"cannot load {target} ({type(e).__name__}: {e})") from None
    return found


def entries(group: str) -> list[Declared]:
    """What the installed packages declare under `group` (tests replace this)."""
    return [Declared(e.name, e.value, e.dist.name if getattr(e, "dist", None) else "")
            for e in metadata.entry_points(group=group)]


@functools.lru_cache(maxsize=None)
def declared(group: str, builtin: frozenset[str], kind: str, advice: str) -> dict[str, Declared]:
    """The declarations of `group` by name; one under a built-in's name is left out, and said so once
    (`advice`, formatted with the target, says how to reach it anyway)."""
    found = {}
    for plugin in entries(group):
        if plugin.name in builtin:
            print(f"warning: plug-in {kind} '{plugin.name}' ({plugin.target}, from "
                  f"{plugin.package or 'an installed package'}) is not used: '{plugin.name}' is a built-in {kind}"
                  + (f"; {advice.format(target=plugin.target)}" if advice else ""), file=sys.stderr)
            continue
        found[plugin.name] = plugin
    return found
