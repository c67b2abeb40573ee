"""Output file names a user can recognise and that cannot escape the output folder.

The name comes from the source (``photos/Cat 1.JPG`` -> ``Cat-1.webp``); only
``[A-Za-z0-9._-]`` survive, there is never a separator or a leading dot, so
``../`` and absolute paths are impossible by construction.
"""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_STEM = 80


def _last_part(path: str) -> str:
    """``PurePosixPath(path).name`` without building a path (a worker names thousands a second)."""
    for part in reversed(path.split("/")):
        if part and part != ".":
            return part
    return ""


def source_stem(src: str) -> str:
    """The recognisable part of a source: its last path segment without extension."""
    try:
        path = urlsplit(src).path if "://" in src else src
    except ValueError:  # e.g. an unclosed IPv6 bracket: fall back to the raw text
        path = src
    last = _last_part(unquote(path).replace("\\", "/"))
    stem = last.rsplit(".", 1)[0] if "." in last.lstrip(".") else last
    clean = _UNSAFE.sub("-", stem).strip("-.")
    return clean[:_MAX_STEM] or "image"


def output_name(src: str, extension: str, suffix: str = "") -> str:
    """``stem[-suffix].ext``; the suffix (a short hash) disambiguates clashing stems."""
    stem = source_stem(src)
    tag = _UNSAFE.sub("", suffix)
    return f"{stem}-{tag}{extension}" if tag else f"{stem}{extension}"
