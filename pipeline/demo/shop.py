"""The demo site's shop: structured data to scrape, a pure function of (products, seed).

Listing pages ``/shop/list/{k}.html`` (``/shop/`` is the first) show
``PER_PAGE`` products each as ``div.product`` (name linking to the product
page, price, tags, date, blurb) and link the next listing with ``a.next``;
each listing after the first also repeats the previous listing's first product
as a "featured" ``div.product`` (so a unique key finds duplicates). Product
pages ``/shop/item/{i}.html`` (``article.product-detail``) add a SKU, a stock
line (missing on every fifth product: a required field to miss), a
description and an image.

The values are awkward on purpose: names with commas, double quotes and
non-ASCII letters, prices with thousands separators, blurbs spanning two lines
(a CSV feed must quote them).
"""

from __future__ import annotations

import html
import random
from typing import Any

PER_PAGE = 8
_ADJECTIVES = ("Copper", "Quiet", "Café", "Harbor", "Ember", "Jasmine", "Glacier", "Saffron", "Naïve", "Timber")
_NOUNS = ("Lantern", "Kettle", "Compass", "Satchel", "Teapot", "Blanket", "Notebook", "Lamp", "Mug", "Stool")
_TAGS = ("home", "garden", "kitchen", "travel", "gift", "sale", "new", "eco", "handmade", "vintage")
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")  # fmt: skip


def _rng(seed: int, *parts: object) -> random.Random:
    return random.Random(":".join(map(str, (seed, "shop", *parts))))


def product(seed: int, i: int) -> dict[str, Any]:
    """Product i's values as the pages show them (the reference scraper recovers them from the HTML)."""
    rng = _rng(seed, i)
    name = f"{rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS)}"
    if i % 3 == 0:
        name += f', "{rng.choice(_TAGS)}" edition'
    cents = rng.randrange(199, 99_999) if i % 7 else rng.randrange(100_000, 2_500_000)
    price = f"${cents // 100:,}.{cents % 100:02d}"
    month, day = rng.randrange(1, 13), rng.randrange(1, 29)
    return {
        "name": name,
        "price": price,
        "tags": rng.sample(_TAGS, rng.randint(1, 4)),
        "date": f"2024-{month:02d}-{day:02d}",
        "date_text": f"{_MONTHS[month - 1]} {day}, 2024",
        "blurb": f"{rng.choice(_NOUNS)} for every day,\n  made to last",
        "stock": None if i % 5 == 0 else rng.randrange(0, 90),
        "sku": f"SKU-{i:05d}",
        "image": f"/img/{i % 60}.{('jpg', 'png', 'webp', 'gif')[(i % 60) % 4]}",
    }


def list_pages(products: int) -> int:
    return max(1, -(-products // PER_PAGE))


def _card(seed: int, i: int, featured: bool = False) -> str:
    p = product(seed, i)
    tags = "".join(f"<li>{t}</li>" for t in p["tags"])
    return (
        f'<div class="product{" featured" if featured else ""}" data-sku="{p["sku"]}">\n'
        f'  <h2 class="name"><a href="/shop/item/{i}.html">{html.escape(str(p["name"]))}</a></h2>\n'
        f'  <span class="price">{p["price"]}</span>\n'
        f'  <ul class="tags">{tags}</ul>\n'
        f'  <time datetime="{p["date"]}">{p["date_text"]}</time>\n'
        f'  <p class="blurb">{html.escape(str(p["blurb"]))}</p>\n'
        "</div>"
    )


def _document(title: str, body: str) -> bytes:
    return (f'<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{html.escape(title)}</title>\n'
            f'</head>\n<body>\n<nav><a href="/shop/">Shop</a></nav>\n{body}\n</body>\n</html>\n').encode()  # fmt: skip


def list_html(products: int, seed: int, k: int) -> bytes:
    """Listing k: its products, the previous listing's first as featured, and the next listing's link."""
    first = k * PER_PAGE
    cards = [_card(seed, i) for i in range(first, min(first + PER_PAGE, products))]
    if k > 0:
        cards.insert(0, _card(seed, first - PER_PAGE, featured=True))
    pager = f'<a class="next" href="/shop/list/{k + 1}.html">Next page</a>' if k + 1 < list_pages(products) else ""
    if k > 0:
        pager = f'<a class="prev" href="/shop/list/{k - 1}.html">Previous page</a> ' + pager
    body = f"<h1>Products, page {k + 1}</h1>\n" + "\n".join(cards) + f'\n<p class="pager">{pager}</p>'
    return _document(f"Shop page {k + 1}", body)


def item_html(products: int, seed: int, i: int) -> bytes:
    p = product(seed, i)
    tags = "".join(f"<li>{t}</li>" for t in p["tags"])
    stock = "" if p["stock"] is None else f'<span class="stock">{p["stock"]} in stock</span>\n'
    body = (
        f'<article class="product-detail">\n<h1>{html.escape(str(p["name"]))}</h1>\n'
        f'<span class="price">{p["price"]}</span>\n<span class="sku">{p["sku"]}</span>\n{stock}'
        f'<ul class="tags">{tags}</ul>\n<time datetime="{p["date"]}">{p["date_text"]}</time>\n'
        f'<div class="desc"><p>{html.escape(str(p["blurb"]))}</p></div>\n'
        f'<img src="{p["image"]}" alt="photo">\n'
        f'<a class="back" href="../list/{i // PER_PAGE}.html">Back to the list</a>\n</article>'
    )
    return _document(str(p["name"]), body)
