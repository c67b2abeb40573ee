"""A scrape's pages parsed in the process pool: the crawl's parse, plus the user's fields on the same tree.

Where it runs, and why: selector evaluation is CPU work in Python (parsel
translates CSS to XPath, lxml evaluates it in C, but building the values,
stripping, joining, running regexes and numbers is Python holding the GIL),
and so is a user's ``--extractor``. A worker's main process runs the event
loop that fetches every page, so this runs where the crawl's own parse runs:
the process pool (``PIPELINE_PARSE_POOL=processes``, the default), a chunk of
pages per round trip; in threads it would stall the fetching. The page is
parsed **once** (``pipeline.core.html.parse_page``'s ``visit`` hook hands the
scrape the untouched lxml tree, wrapped by parsel without a re-parse), so a
scrape costs a crawl's parse plus the selectors, not two parses.

The page's items travel with its result (``_items``: JSON lines as one
string, so the ledger's Lua re-encoding cannot alter a number) and are kept
by the ledger's first-write-wins call in the job's ``feed`` hash, apart from
the (small) page results every report reads: a re-delivered page never adds
items twice. The reduce merges them into the feed (``pipeline.kinds.scrape``).
"""

from __future__ import annotations

import json
import os
import time
from functools import lru_cache
from json.encoder import encode_basestring_ascii
from typing import Any

from pipeline.core.extract import Extraction, PageItems
from pipeline.core.html import parse_page
from pipeline.core.urls import Scope, normalize
from pipeline.plugins import PluginError, load
from workers.page_parse import _JSON, ParsedPage, _encode
from workers.processes import TRIM_AFTER_BYTES, trim_memory

ITEM_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=str)


@lru_cache(maxsize=32)
def _extraction(raw: str) -> Extraction:
    """A job's extraction, built once per child (every chunk of the job sends the same text)."""
    return Extraction.from_json(json.loads(raw))


def _run_extractor(ref: str, url: str, body: bytes, charset: str | None) -> list[dict[str, Any]]:
    """The user's ``(url, html_text) -> list[dict]``; raises with a message saying what went wrong."""
    function = load("extractor", ref)
    try:
        text = body.decode(charset or "utf-8", "replace")
    except LookupError:
        text = body.decode("utf-8", "replace")
    found = function(url, text)
    if found is None:
        return []
    items = list(found)
    for item in items:
        if not isinstance(item, dict):
            raise TypeError(f"returned a {type(item).__name__} among its items; expected dicts")
    return [{"url": url, **item} for item in items]


def parse_for_scrape(
    extraction: str, pages: list[tuple[bytes, str, str | None]], scope: dict[str, Any], images: bool
) -> list[ParsedPage]:
    """Like ``parse_for_crawl``, and each page's items in its meta; ``extraction`` is the job's JSON."""
    spec = _extraction(extraction)
    in_scope = Scope.from_json(scope)
    parsed = []
    for body, url, charset in pages:
        started = time.perf_counter()
        found: list[PageItems] = []
        failure: tuple[str, str] | None = None
        lines: list[str] = []

        def visit(root: Any, url: str = url, found: list[PageItems] = found) -> None:
            found.append(spec.items(root, url))

        try:
            info = parse_page(body, url, charset, visit if spec.fields or spec.follow else None)
        except Exception as exc:  # a selector that fails at run time (e.g. an XPath function on odd input)
            info = parse_page(body, url, charset)
            failure, found = ("extract_error", f"{type(exc).__name__}: {exc}"), []
        page = found[0] if found else PageItems([])
        items = page.items
        if spec.extractor and failure is None:
            try:
                items = items + _run_extractor(spec.extractor, url, body, charset)
            except PluginError as exc:
                failure = ("extractor_error", exc.message)
            except Exception as exc:
                failure = ("extractor_error", f"{type(exc).__name__}: {exc}")
        meta: dict[str, Any] = {}
        if failure is None:
            try:
                lines = [ITEM_JSON.encode(item) for item in items]
            except (TypeError, ValueError) as exc:  # an extractor's NaN or other non-JSON value
                failure, lines = ("extractor_error", f"item is not JSON: {exc}"), []
            keys = list(dict.fromkeys(key for item in items for key in item))
            meta = {"n_items": len(lines), "keys": keys}
            if page.incomplete:
                meta["incomplete"] = page.incomplete
        links = info.links if page.follow is None else list(dict.fromkeys(filter(None, map(normalize, page.follow))))
        discovered = ',"_links":' + _encode(links, in_scope, "p")
        if images:
            discovered += ',"_images":' + _encode(info.images, in_scope, "i")
        discovered += ',"_words":' + _JSON.encode(info.top_words)
        if failure is None and lines:  # the ledger keeps them apart from the page's result (its `feed`)
            discovered += ',"_items":' + encode_basestring_ascii("\n".join(lines))
        parsed.append(ParsedPage(info.title, info.word_count, len(info.links), time.perf_counter() - started,
                                 os.getpid(), discovered, meta, failure))  # fmt: skip
    if sum(len(body) for body, _, _ in pages) >= TRIM_AFTER_BYTES:
        trim_memory()
    return parsed
