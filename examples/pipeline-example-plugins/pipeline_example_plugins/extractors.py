"""An extractor: ``(url: str, html_text: str) -> list[dict]``, one dict per item found on the page.

pipeline calls it on the worker with each fetched page's URL and decoded HTML;
the dicts it returns are the page's items (pipeline adds ``url``). Values
should be JSON-able (strings, numbers, lists). Raise to fail that page: the job
records it as ``extractor_error`` with your message and carries on.

``products`` reads product cards the way shops commonly mark them up: an
element whose ``class`` contains ``product`` (or ``itemtype`` names a schema.org
Product), holding a name (``itemprop="name"``, class ``name``/``title``, or the
first heading) and a price (``itemprop="price"`` or class ``price``). A page with
no product is summarised by its headings instead: one item per ``h1``-``h3``.
Standard library only (``html.parser``), so it runs wherever pipeline does.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

_NUMBER = re.compile(r"-?\d+(?:[.,]\d+)?")
_HEADINGS = ("h1", "h2", "h3")
_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


def _price(text: str) -> float | None:
    match = _NUMBER.search(text.replace("\u00a0", " "))
    return float(match.group().replace(",", ".")) if match else None


class _Cards(HTMLParser):
    """Collects product cards (name, price text) and headings, in document order."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.products: list[dict[str, str]] = []
        self.headings: list[tuple[str, str]] = []
        self._stack: list[str] = []  # open elements
        self._card_depth: int | None = None  # stack depth of the open product card
        self._field: tuple[str, int] | None = None  # (field name, depth) being read
        self._heading: tuple[str, int] | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {name: value or "" for name, value in attrs}
        if tag in _VOID:  # <meta itemprop="price" content="3.00"> inside a card
            if self._card_depth is not None and found.get("itemprop") == "price" and found.get("content"):
                self.products[-1].setdefault("price", found["content"])
            return
        self._stack.append(tag)
        depth = len(self._stack)
        classes = found.get("class", "").lower().split()
        if self._card_depth is None and (
            any(c == "product" or c.startswith("product-card") for c in classes)
            or found.get("itemtype", "").rstrip("/").endswith("schema.org/Product")
        ):
            self._card_depth = depth
            self.products.append({})
        if self._card_depth is not None and self._field is None:
            prop = found.get("itemprop", "")
            field = ("name" if prop == "name" or {"name", "title"} & set(classes) else
                     "price" if prop == "price" or "price" in classes else None)  # fmt: skip
            card = self.products[-1]
            if field is None and tag in _HEADINGS and "name" not in card:
                field = "name"
            if field is not None and field not in card:
                if field == "price" and found.get("content"):
                    card["price"] = found["content"]
                else:
                    self._field, self._text = (field, depth), []
        if tag in _HEADINGS and self._heading is None:
            self._heading = (tag, depth)
            if self._field is None:
                self._text = []

    def handle_endtag(self, tag: str) -> None:
        if tag in _VOID or tag not in self._stack:
            return
        while self._stack:
            depth = len(self._stack)
            closed = self._stack.pop()
            self._close(depth)
            if closed == tag:
                break

    def _close(self, depth: int) -> None:
        text = " ".join("".join(self._text).split())
        if self._field is not None and self._field[1] == depth:
            self.products[-1][self._field[0]] = text
            self._field = None
        if self._heading is not None and self._heading[1] == depth:
            if text:
                self.headings.append((self._heading[0], text))
            self._heading = None
        if self._card_depth == depth:
            self._card_depth = None

    def handle_data(self, data: str) -> None:
        if self._field is not None or self._heading is not None:
            self._text.append(data)


def products(url: str, html_text: str) -> list[dict[str, Any]]:
    """Product cards (name, price as text and as a number), else the page's headings."""
    parser = _Cards()
    parser.feed(html_text)
    parser.close()
    found = [card for card in parser.products if card.get("name")]
    if found:
        return [
            {"name": card["name"], "price_text": card.get("price", ""), "price": _price(card.get("price", ""))}
            for card in found
        ]
    return [{"heading": text, "level": int(tag[1])} for tag, text in parser.headings]
