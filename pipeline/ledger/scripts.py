"""Loading the ledger's Lua scripts (``pipeline/ledger/lua``), for every module that registers one.

Apart from ``jobs`` so that the other script users (``holdings``, ``blobs``,
``pipeline.politeness``) need not import the job ledger, and the ledger can
hand out a ``Holdings`` without a cycle between sibling modules.
"""

from __future__ import annotations

from importlib import resources


def lua(name: str, *prelude: str) -> str:
    """A script, prefixed with the shared functions it calls (Redis scripts cannot import)."""
    files = resources.files("pipeline.ledger.lua")
    return "".join(files.joinpath(part).read_text() for part in (*prelude, name))
