"""What a crawl learns from an HTML page: links, images, title, word statistics.

Runs in a process-pool child (see README "Which pool runs what"): lxml parses
in C, but building link lists and counting words is Python work that holds
the GIL. Links and images come back normalised and de-duplicated, in document
order; scope filtering is the caller's (it knows the job).
"""

from __future__ import annotations

import dataclasses
import os
import re
import time
from collections import Counter
from dataclasses import dataclass, field

import lxml.etree
import lxml.html

from pipeline.core.urls import normalize

_WORD = re.compile(r"[^\W\d_]{2,}")
_DESCRIPTOR = re.compile(r"^(\d+(?:\.\d+)?)([wx])$")
TOP_WORDS_PER_PAGE = 50
_STOPWORD_TEXT = """
a about above after again against all am an and any are as at be because been before being below
between both but by can did do does doing down during each few for from further had has have having
he her here hers herself him himself his how i if in into is it its itself just me more most my
myself no nor not now of off on once only or other our ours ourselves out over own same she should
so some such than that the their theirs them themselves then there these they this those through to
too under until up very was we were what when where which while who whom why will with you your
yours yourself yourselves also may one would could us
"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())


@dataclass(frozen=True)
class PageInfo:
    title: str = ""
    links: list[str] = field(default_factory=list)
    images: list[str] = field(default_factory=list)
    word_count: int = 0
    top_words: list[tuple[str, int]] = field(default_factory=list)
    seconds: float = 0.0
    pid: int = 0  # the process that parsed it (per-core metrics)


def pick_from_srcset(srcset: str) -> str | None:
    """The candidate with the largest width (``480w``) or density (``2x``) descriptor.

    We are about to make our own thumbnail of it, so the biggest source gives
    the best result; a candidate without a descriptor counts as ``1x``.
    """
    best: tuple[float, str] | None = None
    for candidate in srcset.split(","):
        parts = candidate.strip().split()
        if not parts:
            continue
        weight = 1.0
        if len(parts) > 1 and (match := _DESCRIPTOR.match(parts[-1].lower())):
            value, unit = float(match.group(1)), match.group(2)
            weight = value if unit == "w" else value * 1000  # any w beats a bare x only by size
        if best is None or weight > best[0]:
            best = (weight, parts[0])
    return best[1] if best else None


# Where lazy-loading scripts keep the real image until it scrolls into view; `src` then
# holds a placeholder (often a data: URI), so these win over it.
_LAZY_SRCSET = ("data-srcset", "data-lazy-srcset")
_LAZY_SRC = ("data-src", "data-lazy-src", "data-original", "data-lazy")
_REFRESH_URL = re.compile(r"""^\s*\d*(?:\.\d*)?\s*[;,]?\s*(?:url\s*=\s*)?['"]?([^'"\s]+)""", re.IGNORECASE)


def _image_source(img: lxml.html.HtmlElement) -> str | None:
    """The best URL for an ``<img>``: the largest srcset candidate, lazy-loading attributes included."""
    for attribute in ("srcset", *_LAZY_SRCSET):
        chosen = pick_from_srcset(img.get(attribute, "")) if img.get(attribute) else None
        if chosen and not chosen.startswith("data:"):
            return chosen
    src = (img.get("src") or "").strip()
    if src and not src.startswith("data:"):
        return src
    return next((img.get(a, "").strip() for a in _LAZY_SRC if img.get(a, "").strip()), src or None)


def _refresh_target(meta: lxml.html.HtmlElement) -> str | None:
    """The URL of ``<meta http-equiv="refresh" content="0; url=...">``: a redirect written in HTML."""
    if (meta.get("http-equiv") or "").strip().lower() != "refresh":
        return None
    content = meta.get("content") or ""
    if "url" not in content.lower():
        return None
    match = _REFRESH_URL.match(content)
    return match.group(1) if match else None


def _unique(urls: list[str | None]) -> list[str]:
    return list(dict.fromkeys(u for u in urls if u))


def parse_page(body: bytes, url: str, charset: str | None = None) -> PageInfo:
    """Parse an HTML document fetched from ``url`` (its final URL after redirects)."""
    started = time.perf_counter()
    info = _parse(body, url, charset)
    return dataclasses.replace(info, seconds=time.perf_counter() - started, pid=os.getpid())


def parse_pages(pages: list[tuple[bytes, str, str | None]]) -> list[PageInfo]:
    """Several pages in one call: one pool round trip per chunk, not per page.

    Measured (README, "Which pool runs what"): for small pages the pipe costs
    as much as the parse, so one page per call gains nothing from processes.
    """
    return [parse_page(body, url, charset) for body, url, charset in pages]


def _parse(body: bytes, url: str, charset: str | None) -> PageInfo:
    if not body.strip():
        return PageInfo()
    try:
        text = body.decode(charset, errors="replace") if charset else None
    except LookupError:
        text = None
    try:
        doc = lxml.html.document_fromstring(text if text is not None else body)
    except (lxml.etree.ParserError, ValueError):
        return PageInfo()
    base_href = next((b.get("href") for b in doc.iter("base") if b.get("href")), None)
    base = normalize(base_href, url) if base_href else url
    base = base or url
    title = " ".join((doc.findtext(".//title") or "").split())
    hrefs = [a.get("href", "") for a in doc.iter("a", "area") if a.get("href")]
    hrefs += [target for meta in doc.iter("meta") if (target := _refresh_target(meta))]
    links = _unique([normalize(href, base) for href in hrefs])
    images: list[str | None] = []
    for img in doc.iter("img"):
        chosen = _image_source(img)
        images.append(normalize(chosen, base) if chosen else None)
    for dropped in doc.xpath("//script|//style|//noscript"):
        dropped.drop_tree()
    words = _WORD.findall(" ".join(doc.itertext()).lower())  # joined: inline elements abut
    counts = Counter(w for w in words if w not in STOPWORDS)
    return PageInfo(title[:300], links, _unique(images), len(words), counts.most_common(TOP_WORDS_PER_PAGE))
