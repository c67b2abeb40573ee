"""A crawl's pages parsed in the process pool, ready for the ledger.

Besides parsing (``pipeline.core.html``), the pool child keeps the links and
images that are in the crawl's scope and encodes them, with their item ids, as
the JSON members the ledger admits (``_links``, ``_images``, ``_words``): per
page that is dozens of URL checks and hashes the worker's main process, whose
event loop fetches every page, would otherwise spend. Kept apart from
``crawl_stages`` so a pool child imports only this and the pure core.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from typing import Any

from pipeline.core.html import parse_page
from pipeline.core.urls import Scope, url_id


@dataclass(frozen=True)
class ParsedPage:
    title: str
    word_count: int
    links: int  # every link on the page, in scope or not
    seconds: float
    pid: int  # the process that parsed it (per-core metrics)
    discoveries: str  # ',"_links":[...],...': members to splice into the page's result JSON


def parse_for_crawl(
    pages: list[tuple[bytes, str, str | None]], scope: dict[str, Any], images: bool
) -> list[ParsedPage]:
    """Several pages in one call (one pool round trip per chunk); ``scope`` is ``Scope.to_json()``."""
    allowed = Scope.from_json(scope).allows
    parsed = []
    for body, url, charset in pages:
        started = time.perf_counter()
        info = parse_page(body, url, charset)
        found: dict[str, Any] = {"_links": [[url_id(link, "p"), link] for link in info.links if allowed(link)]}
        if images:
            found["_images"] = [[url_id(img, "i"), img] for img in info.images if allowed(img)]
        found["_words"] = [[word, count] for word, count in info.top_words]
        members = json.dumps(found, separators=(",", ":"))
        parsed.append(ParsedPage(info.title, info.word_count, len(info.links), time.perf_counter() - started,
                                 os.getpid(), "," + members[1:-1]))  # fmt: skip
    return parsed
