"""A crawl's pages parsed in the process pool, ready for the ledger.

Besides parsing (``pipeline.core.html``), the pool child keeps the links and
images that are in the crawl's scope and encodes them, with their item ids, as
the JSON members the ledger admits (``_links``, ``_images``, ``_words``, and
``_offsite``: the hosts of images the scope leaves out, so the report can say
which ``--allow-domain`` a CDN-served site needs): per
page that is dozens of URL checks and hashes the worker's main process, whose
event loop fetches every page, would otherwise spend. Kept apart from
``crawl_stages`` so a pool child imports only this and the pure core.

A crawl's site-wide links (menus, footers) recur on every page, so each
child remembers, per scope, the encoded member of every link it has seen
(bounded), as ``pipeline.core.urls`` remembers canonical forms.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter
from dataclasses import dataclass
from json.encoder import encode_basestring_ascii
from typing import Any

from pipeline.core.html import parse_page
from pipeline.core.urls import Scope, hostname_of, url_id
from workers.processes import TRIM_AFTER_BYTES, trim_memory

# Per (scope, kind): link -> its JSON member '["<id>","<link>"]' (as json.dumps writes it: the id is
# hex, the link escaped by json's own ASCII string encoder), or "" when out of scope. Site-wide
# links recur on every page of a crawl, so each is checked and hashed once per child. Bounded:
# when the tables together reach MEMBER_CACHE_SIZE entries (~5 MB) they are all emptied, and only
# the last few scopes are kept.
MEMBER_CACHE_SIZE = 32768
_SCOPES_KEPT = 8
_members: dict[tuple[frozenset[str], frozenset[str], str], dict[str, str]] = {}
_members_lock = threading.Lock()  # the parse may run in threads (parse_pool = "threads")
# What json.dumps(..., separators=(",", ":")) writes, without building an encoder per call (and the
# circular-reference check, pointless on lists of strings and numbers).
_JSON = json.JSONEncoder(separators=(",", ":"), check_circular=False)
OFF_SITE_HOSTS_PER_PAGE = 20  # a page's off-site image hosts reported, most images first


def _member_table(scope: Scope, kind: str) -> dict[str, str]:
    key = (scope.hosts, scope.domains, kind)
    with _members_lock:
        table = _members.pop(key, None) or {}
        if len(table) + sum(map(len, _members.values())) >= MEMBER_CACHE_SIZE:
            _members.clear()
            table = {}
        while len(_members) >= _SCOPES_KEPT:
            del _members[next(iter(_members))]  # the least recently used scope
        _members[key] = table
    return table


def _encode(urls: list[str], scope: Scope, kind: str, left_out: Counter[str] | None = None) -> str:
    """The JSON array of ``[id, url]`` for the ``urls`` in scope, as ``json.dumps`` compactly writes it.

    ``left_out`` (if given) counts the URLs out of scope by host name.
    """
    table = _member_table(scope, kind)
    members = []
    for url in urls:
        member = table.get(url)
        if member is None:
            allowed = scope.allows(url)
            member = table[url] = f'["{url_id(url, kind)}",{encode_basestring_ascii(url)}]' if allowed else ""
        if member:
            members.append(member)
        elif left_out is not None and (host := hostname_of(url)):
            left_out[host] += 1
    return "[" + ",".join(members) + "]"


@dataclass(frozen=True)
class ParsedPage:
    title: str
    word_count: int
    links: int  # every link on the page, in scope or not
    seconds: float
    pid: int  # the process that parsed it (per-core metrics)
    discoveries: str  # ',"_links":[...],...': members to splice into the page's result JSON
    meta: dict[str, Any] | None = None  # more of the page's meta (a scrape's items)
    failure: tuple[str, str] | None = None  # (reason, detail): the page fails, its links are still followed


def parse_for_crawl(
    pages: list[tuple[bytes, str, str | None]], scope: dict[str, Any], images: bool
) -> list[ParsedPage]:
    """Several pages in one call (one pool round trip per chunk); ``scope`` is ``Scope.to_json()``.

    ``discoveries`` is what ``json.dumps({"_links": ..., "_images": ..., "_words": ...})``
    would give (minus the braces), assembled from cached per-link members.
    """
    in_scope = Scope.from_json(scope)
    parsed = []
    for body, url, charset in pages:
        started = time.perf_counter()
        info = parse_page(body, url, charset)
        found = ',"_links":' + _encode(info.links, in_scope, "p")
        if images:
            off_site: Counter[str] = Counter()
            found += ',"_images":' + _encode(info.images, in_scope, "i", off_site)
            if off_site:
                found += ',"_offsite":' + _JSON.encode(off_site.most_common(OFF_SITE_HOSTS_PER_PAGE))
        found += ',"_words":' + _JSON.encode(info.top_words)  # (word, count) tuples: JSON arrays too
        parsed.append(ParsedPage(info.title, info.word_count, len(info.links), time.perf_counter() - started,
                                 os.getpid(), found))  # fmt: skip
    if sum(len(body) for body, _, _ in pages) >= TRIM_AFTER_BYTES:
        trim_memory()  # the trees and texts of big pages are freed by now: return their memory
    return parsed
