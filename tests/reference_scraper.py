"""The reference crawler's scraping half: the oracle for scrape jobs over the demo shop.

Like ``tests.reference_crawler`` (whose fetching and URL normalisation it
uses) it imports nothing from ``pipeline`` and nothing of its selector stack
(no parsel, no lxml, no cssselect): the shop's fields are recovered with the
standard library's ``html.parser``, by walking start and end tags. It knows
the shop's markup (``pipeline.demo.shop``) rather than evaluating selectors,
so a bug in the selector path cannot hide in both.

``scrape_listings`` follows ``a.next`` links breadth-first from the seed and
returns the ``div.product`` items in the scrape feed's order: page depth, page
URL, position on the page.
"""

from __future__ import annotations

import re
from collections import deque
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin

from tests.reference_crawler import _Fetcher, normalize


class _ListingParser(HTMLParser):
    """Collects each ``div.product``'s fields, and the ``a.next`` hrefs."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.products: list[dict[str, Any]] = []
        self.next_links: list[str] = []
        self._current: dict[str, Any] | None = None
        self._capture: str | None = None  # the field whose text is being collected
        self._text: list[str] = []
        self._depth = 0  # div nesting inside the current product

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = {name: value or "" for name, value in attrs}
        classes = attr.get("class", "").split()
        if tag == "a" and "next" in classes:
            self.next_links.append(attr.get("href", ""))
        if tag == "div" and "product" in classes and self._current is None:
            self._current = {"sku": attr.get("data-sku"), "tags": []}
            self._depth = 1
            return
        if self._current is None:
            return
        if tag == "div":
            self._depth += 1
        elif tag == "a" and "link" not in self._current:
            self._current["link"] = attr.get("href", "")
            self._start("name")
        elif tag == "span" and "price" in classes:
            self._start("price")
        elif tag == "li":
            self._start("tag")
        elif tag == "time":
            self._current["date"] = attr.get("datetime")
        elif tag == "p" and "blurb" in classes:
            self._start("blurb")

    def _start(self, name: str) -> None:
        self._capture, self._text = name, []

    def handle_data(self, data: str) -> None:
        if self._capture is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if self._current is None:
            return
        if self._capture is not None and tag in ("a", "span", "li", "p"):
            text = "".join(self._text).strip()
            if self._capture == "tag":
                self._current["tags"].append(text)
            else:
                self._current[self._capture] = text
            self._capture = None
        if tag == "div":
            self._depth -= 1
            if self._depth == 0:
                self.products.append(self._current)
                self._current = None


def _price(text: str | None) -> float | None:
    match = re.search(r"[\d,]+\.\d+", text or "")
    return float(match.group(0).replace(",", "")) if match else None


def scrape_listings(seed: str, timeout: float = 5.0) -> list[dict[str, Any]]:
    """Every ``div.product`` of the listings reachable by ``a.next`` from ``seed``, as the feed orders them.

    Fields: url (the page), name, price (a float, thousands separators dropped),
    tags (a list), link (absolute), date (the datetime attribute), blurb, sku.
    """
    fetcher = _Fetcher(timeout)
    start = normalize(seed)
    assert start is not None
    depth = {start: 0}
    queue = deque([start])
    pages: list[tuple[int, str, list[dict[str, Any]]]] = []
    while queue:
        url = queue.popleft()
        response = fetcher.get(url)
        assert response.status == 200, f"{url}: {response.status}"
        parser = _ListingParser()
        parser.feed(response.body.decode("utf-8"))
        parser.close()
        items = []
        for found in parser.products:
            items.append({"url": url, "name": found.get("name"), "price": _price(found.get("price")),
                          "tags": found["tags"], "link": urljoin(url, found.get("link", "")),
                          "date": found.get("date"), "blurb": found.get("blurb"), "sku": found.get("sku")})  # fmt: skip
        pages.append((depth[url], url, items))
        for href in parser.next_links:
            target = normalize(urljoin(url, href.strip()))
            if target is not None and target not in depth:
                depth[target] = depth[url] + 1
                queue.append(target)
    pages.sort(key=lambda page: (page[0], page[1]))
    return [item for _, _, items in pages for item in items]
