"""The user's own code as a stage: extractors and image ops, found by name on the worker.

A job names a plugin; it never carries code. A worker imports only what is
installed on it, from one of two places:

* a Python **entry point** in the group of its role (``pipeline.extractors``,
  ``pipeline.ops``), by its name: ``shop``; this is how a package offers stages;
* an importable **dotted path**: ``package.module:function`` (or the last dot
  as the separator, ``package.module.function``), for code on ``PYTHONPATH``.

The submit side asks the live workers whether they can import a name (a
plugin installed only on the client is no use), so a job never starts with a
stage nobody can run. Loaded objects are cached per process: a pool child
imports a plugin once, not once per item.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from functools import lru_cache
from importlib.metadata import entry_points
from typing import Any, Literal

from pipeline.core.errors import UsageError

Role = Literal["extractor", "op"]

# The entry-point group of each role: a package declares its stages under these.
GROUPS: dict[Role, str] = {"extractor": "pipeline.extractors", "op": "pipeline.ops"}


class PluginError(UsageError):
    """A plugin name that cannot be imported, or that does not name a callable."""


def is_dotted(ref: str) -> bool:
    """Whether ``ref`` is a dotted path rather than an entry-point name."""
    return ":" in ref or "." in ref


def installed(role: Role) -> list[str]:
    """The entry-point names of ``role`` installed in this environment, sorted."""
    return sorted({ep.name for ep in entry_points(group=GROUPS[role])})


@lru_cache(maxsize=256)
def load(role: Role, ref: str) -> Callable[..., Any]:
    """The callable ``ref`` names for ``role``; PluginError says why when there is none."""
    ref = ref.strip()
    if not ref:
        raise PluginError(f"empty {role} name")
    target: object = _import_dotted(role, ref) if is_dotted(ref) else _entry_point(role, ref)
    if not callable(target):
        raise PluginError(f"{role} {ref!r} is a {type(target).__name__}, not a function")
    return target


def _entry_point(role: Role, name: str) -> object:
    found = [ep for ep in entry_points(group=GROUPS[role]) if ep.name == name]
    if not found:
        known = ", ".join(installed(role)) or "none installed"
        raise PluginError(
            f"no {role} named {name!r} in entry points {GROUPS[role]!r} ({known}); "
            "give an installed name or a dotted path package.module:function"
        )
    try:
        return found[0].load()
    except Exception as exc:  # the plugin's own import failed: say so, do not crash
        raise PluginError(f"{role} {name!r} could not be imported: {type(exc).__name__}: {exc}") from exc


def _import_dotted(role: Role, ref: str) -> object:
    module_name, sep, attr = ref.partition(":") if ":" in ref else ref.rpartition(".")
    if not module_name or not sep or not attr:
        raise PluginError(f"{role} {ref!r} is not a dotted path like package.module:function")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # ModuleNotFoundError or the module's own error
        raise PluginError(f"{role} {ref!r}: cannot import {module_name!r}: {type(exc).__name__}: {exc}") from exc
    target: object = module
    for part in attr.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise PluginError(f"{role} {ref!r}: module {module_name!r} has no {attr!r}") from None
    return target


def importable(role: Role, ref: str) -> str | None:
    """None when ``ref`` loads here, else the one-line reason (what a worker answers when asked)."""
    try:
        load(role, ref)
    except PluginError as exc:
        return exc.message
    return None
