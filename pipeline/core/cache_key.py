"""The result cache's key and entry format: which outputs are "the same work" (pure, no I/O).

Two items share a cached output when the source bytes are identical and so is
everything that decides the output bytes: the op chain, the output format and
quality, the Pillow version that encodes them, and this module's format
version. The pixel cap is in the key too: it does not change the bytes, but it
decides whether an item fails (``decompression_bomb``), and a hit must never
turn a failure under a lower cap into a success.

An entry is ``MAGIC``, the output's width and height, then the encoded output,
so a hit needs no decode to fill in the item's result.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import PIL

CACHE_VERSION = 1  # bump when the key or the entry format changes: old entries are then never read
ENGINE = f"pillow-{PIL.__version__}"  # a Pillow upgrade may encode differently: a new key space
MAGIC = b"plc1"
_HEADER = struct.Struct(">4sII")


def plan_digest(plan_json: Mapping[str, Any], engine: str = ENGINE) -> str:
    """Digest of what turns source bytes into output bytes (``TransformPlan.to_json()``)."""
    canonical = {
        "v": CACHE_VERSION,
        "engine": engine,
        "ops": plan_json["ops"],
        "format": plan_json["format"],
        "quality": plan_json["quality"],
        "max_pixels": plan_json["max_pixels"],
    }
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def cache_digest(source: bytes, plan: str) -> str:
    """What names the output of ``plan`` (a ``plan_digest``) applied to ``source`` (the ledger keys it)."""
    content = hashlib.sha256(source).hexdigest()
    return hashlib.sha256(f"{CACHE_VERSION}:{plan}:{content}".encode()).hexdigest()


@dataclass(frozen=True)
class CachedOutput:
    data: bytes
    width: int
    height: int


def encode_entry(output: CachedOutput) -> bytes:
    return _HEADER.pack(MAGIC, output.width, output.height) + output.data


def decode_entry(raw: object) -> CachedOutput | None:
    """The entry, or None for anything that is not one (absent, foreign or cut short): a miss."""
    if not isinstance(raw, bytes) or len(raw) <= _HEADER.size:
        return None
    magic, width, height = _HEADER.unpack_from(raw)
    if magic != MAGIC or not width or not height:
        return None
    return CachedOutput(raw[_HEADER.size :], width, height)
