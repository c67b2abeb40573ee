"""What a crawl learns from an HTML page: links, images, title, word statistics.

Runs in a process-pool child (see README "Which pool runs what"): lxml parses
in C, but building link lists and counting words is Python work that holds
the GIL. Links and images come back normalised and de-duplicated, in document
order; scope filtering is the caller's (it knows the job).
"""

from __future__ import annotations

import os
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

import lxml.etree

from pipeline.core.urls import normalize, normalize_all

_WORD = re.compile(r"[^\W\d_]{2,}")  # what a word is; count_words has a faster road to the same list
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


def _image_source(img: Any) -> str | None:
    """The best URL for an ``<img>``: the largest srcset candidate, lazy-loading attributes included."""
    for attribute in ("srcset", *_LAZY_SRCSET):
        chosen = pick_from_srcset(img.get(attribute, "")) if img.get(attribute) else None
        if chosen and not chosen.startswith("data:"):
            return chosen
    src = (img.get("src") or "").strip()
    if src and not src.startswith("data:"):
        return src
    return next((img.get(a, "").strip() for a in _LAZY_SRC if img.get(a, "").strip()), src or None)


def _refresh_target(meta: Any) -> str | None:
    """The URL of ``<meta http-equiv="refresh" content="0; url=...">``: a redirect written in HTML."""
    if (meta.get("http-equiv") or "").strip().lower() != "refresh":
        return None
    content = meta.get("content") or ""
    if "url" not in content.lower():
        return None
    match = _REFRESH_URL.match(content)
    return match.group(1) if match else None


_ASCII = bytes(range(128))
# ASCII letters lowercased; every other byte (UTF-8 bytes of non-ASCII characters too) a space.
_ASCII_WORD_BYTES = bytes((c | 0x20) if chr(c).isascii() and chr(c).isalpha() else 0x20 for c in range(256))
_LETTER = re.compile(r"[^\W\d_]")
_SINGLE_LETTERS = frozenset("abcdefghijklmnopqrstuvwxyz")
_COUNT = itemgetter(1)


def count_words(text: str) -> tuple[int, list[tuple[str, int]]]:
    """The number of words in ``text`` and its most common ones, stopwords left out.

    A word is a run of two or more letters of ``text.lower()`` (``_WORD``). When
    no character beyond ASCII is a letter (most pages: their only non-ASCII
    characters are quotes, dashes, symbols), the words are the runs of ASCII
    letters, split out by one bytes translation, several times faster than the
    Unicode regular expression. That holds because no non-letter lowercases to
    a letter (a unit test checks every code point); other text takes the
    regular expression.
    """
    if text.isascii():
        encoded = text.encode("ascii")
    else:
        encoded = text.encode("utf-8", "surrogatepass")
        if _LETTER.search(encoded.translate(None, _ASCII).decode("utf-8", "surrogatepass")):
            words = _WORD.findall(text.lower())
            return len(words), _top_words(Counter(words))
    runs = encoded.translate(_ASCII_WORD_BYTES).decode("ascii").split()
    counts = Counter(runs)
    singles = sum(counts.pop(letter) for letter in counts.keys() & _SINGLE_LETTERS)  # runs, not words
    return len(runs) - singles, _top_words(counts)


def _top_words(counts: Counter[str]) -> list[tuple[str, int]]:
    """The most common words but stopwords; ties in order of first appearance, as ``most_common`` keeps them."""
    # Set operations in C, looping over the smaller side.
    for word in STOPWORDS.intersection(counts) if len(counts) < len(STOPWORDS) else counts.keys() & STOPWORDS:
        del counts[word]
    # most_common(n) is heapq.nlargest, documented equal to this sort, which runs in C, not in a Python loop.
    return sorted(counts.items(), key=_COUNT, reverse=True)[:TOP_WORDS_PER_PAGE]


_Parsed = tuple[str, list[str], list[str], int, list[tuple[str, int]]]


def _unique(urls: Iterable[str | None]) -> list[str]:
    return list(dict.fromkeys(filter(None, urls)))


def parse_page(
    body: bytes, url: str, charset: str | None = None, visit: Callable[[Any], None] | None = None
) -> PageInfo:
    """Parse an HTML document fetched from ``url`` (its final URL after redirects).

    ``visit`` (if given) sees the parsed tree first, untouched (a scrape extracts its
    fields from it): one parse serves both.
    """
    started = time.perf_counter()
    parsed = _parse(body, url, charset, visit)
    if parsed is None:
        return PageInfo(seconds=time.perf_counter() - started, pid=os.getpid())
    title, links, images, word_count, top_words = parsed
    return PageInfo(title, links, images, word_count, top_words, time.perf_counter() - started, os.getpid())


# A plain lxml parser: the same libxml2 options as lxml.html's, so the same tree, but its
# elements are plain ``_Element``s; lxml.html's class lookup runs Python for every element touched.
_PARSER = lxml.etree.HTMLParser()
_HREFS = lxml.etree.XPath("//a/@href|//area/@href", smart_strings=False)
_INVISIBLE = ("script", "style", "noscript")


def _parse(body: bytes, url: str, charset: str | None, visit: Callable[[Any], None] | None = None) -> _Parsed | None:
    if not body or body.isspace():  # not body.strip(), without copying the body
        return None
    try:
        text = body.decode(charset, errors="replace") if charset else None
    except LookupError:
        text = None
    try:
        doc = lxml.etree.fromstring(text if text is not None else body, _PARSER)
    except (lxml.etree.ParserError, ValueError):
        return None
    if doc is None:  # what lxml.html.document_fromstring reports as "Document is empty"
        return None
    if visit is not None:
        visit(doc)
    hrefs: list[str] = [href for href in _HREFS(doc) if href]
    # One walk for the rest, rather than one per tag.
    base_href: str | None = None
    title_element: Any = None
    refreshes: list[str] = []
    sources: list[str | None] = []
    for element in doc.iter("img", "meta", "base", "title"):
        tag = element.tag
        if tag == "img":
            sources.append(_image_source(element))
        elif tag == "meta":
            if target := _refresh_target(element):
                refreshes.append(target)
        elif tag == "base":
            base_href = base_href or element.get("href") or None  # the first one with an href
        elif title_element is None:
            title_element = element
    base = (normalize(base_href, url) if base_href else url) or url
    title = " ".join((title_element.text or "").split()) if title_element is not None else ""
    links = _unique(normalize_all(hrefs + refreshes, base))
    images = _unique(normalize_all([source for source in sources if source], base))
    # Their tails stay, run together with the text before them: what lxml.html's drop_tree does.
    lxml.etree.strip_elements(doc, *_INVISIBLE, with_tail=False)
    word_count, top_words = count_words(" ".join(doc.itertext()))  # joined: inline elements abut
    return title[:300], links, images, word_count, top_words
