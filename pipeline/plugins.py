"""The user's own code as a stage: extractors and image ops, found by name on the worker.

A job names a plugin; it never carries code. A worker imports only what is
installed on it, from one of two places:

* a Python **entry point** in the group of its role (``pipeline.extractors``,
  ``pipeline.ops``), by its name: ``shop``; this is how a package offers stages;
* an importable **dotted path**: ``package.module:function``, or with dots
  only, ``package.module.function`` (the longest prefix that imports is the
  module, the rest attributes), for code on ``PYTHONPATH``. Image ops use the
  dots-only form: ``:`` separates an op's arguments in the chain.

The submit side asks the live workers whether they can import a name (a
plugin installed only on the client is no use), so a job never starts with a
stage nobody can run. Loaded objects are cached per process: a pool child
imports a plugin once, not once per item.

The scrape's page stage calls an extractor (``workers.scrape_parse``: whatever
the user's code does becomes that page's ``extractor_error``); image ops are
called by ``pipeline.core.imaging`` through a resolver (``workers.child``).
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


# What to suggest instead of an unknown name: an op's arguments are separated by ``:``
# in the chain (``plugin:NAME:ARG``), so its dotted path uses dots only.
_DOTTED_HINT: dict[Role, str] = {"extractor": "package.module:function", "op": "package.module.function"}


def _entry_point(role: Role, name: str) -> object:
    found = [ep for ep in entry_points(group=GROUPS[role]) if ep.name == name]
    if not found:
        known = ", ".join(installed(role)) or "none installed"
        raise PluginError(
            f"no {role} named {name!r} in entry points {GROUPS[role]!r} ({known}); "
            f"give an installed name or a dotted path {_DOTTED_HINT[role]}"
        )
    try:
        return found[0].load()
    except Exception as exc:  # the plugin's own import failed: say so, do not crash
        raise PluginError(f"{role} {name!r} could not be imported: {type(exc).__name__}: {exc}") from exc


def _import_dotted(role: Role, ref: str) -> object:
    """``module:attr.path``, or ``a.b.c.d``: the longest importable prefix is the module, the rest attributes."""
    if ":" in ref:
        module_name, _, attr = ref.partition(":")
        if not module_name or not attr:
            raise PluginError(f"{role} {ref!r} is not a dotted path like {_DOTTED_HINT[role]}")
        return _attribute(role, ref, _import(role, ref, module_name), module_name, attr)
    parts = ref.split(".")
    if not all(parts):
        raise PluginError(f"{role} {ref!r} is not a dotted path like {_DOTTED_HINT[role]}")
    missing: ModuleNotFoundError | None = None
    for cut in range(len(parts) - 1, 0, -1):
        module_name = ".".join(parts[:cut])
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and (module_name == exc.name or module_name.startswith(exc.name + ".")):
                missing = missing or exc
                continue  # this prefix is not a module: try a shorter one (the rest may be attributes)
            raise _cannot_import(role, ref, module_name, exc) from exc
        except Exception as exc:  # the module's own error (a syntax error, a failing import inside)
            raise _cannot_import(role, ref, module_name, exc) from exc
        return _attribute(role, ref, module, module_name, ".".join(parts[cut:]))
    raise _cannot_import(role, ref, ".".join(parts[:-1]), missing or ModuleNotFoundError(parts[0]))


def _import(role: Role, ref: str, module_name: str) -> object:
    try:
        return importlib.import_module(module_name)
    except Exception as exc:  # ModuleNotFoundError or the module's own error
        raise _cannot_import(role, ref, module_name, exc) from exc


def _cannot_import(role: Role, ref: str, module_name: str, exc: Exception) -> PluginError:
    return PluginError(f"{role} {ref!r}: cannot import {module_name!r}: {type(exc).__name__}: {exc}")


def _attribute(role: Role, ref: str, module: object, module_name: str, attr: str) -> object:
    target = module
    for part in attr.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise PluginError(f"{role} {ref!r}: module {module_name!r} has no {attr!r}") from None
    return target


def importable(role: Role, ref: str) -> str | None:
    """None when ``ref`` loads here, else the one-line reason (what a worker answers when asked).

    A failure is tried once more after ``importlib.invalidate_caches``: a package
    installed since this process started (``pip install`` beside a running
    worker) is then found without a restart.
    """
    try:
        load(role, ref)
    except PluginError:
        importlib.invalidate_caches()
        try:
            load(role, ref)
        except PluginError as exc:
            return exc.message
    return None
