"""The demo site's "docs" shape: a documentation website with its screenshots.

The default shape (``pipeline.demo.sitegen``) is a crawler's obstacle course
with a few dozen tiny images. A real documentation site is the other common
case, and the one ``crawl --images`` is for: ~700 pages of ~20 KB, each in the
same frame (a sidebar of sections and the current section's pages,
breadcrumbs, previous/next), and ~2,000 distinct small images, mostly PNG
screenshots of 10-60 KB and some JPEG photos, ~3 per page. A few are shared
(the logo on every page; some pages reuse another page's screenshot) and a few
are missing (404), as on any real site.

Everything is a pure function of ``(pages, images, seed)``: two sites with the
same arguments serve the same bytes. Nothing here does I/O.

Route map (n < pages, k < images): ``/`` (the table of contents),
``/docs/{n}.html``, ``/static/shots/{k}.png`` or ``.jpg`` (``image_path``),
``/static/missing/{n}.png`` (always 404); anything else 404.
"""

from __future__ import annotations

import functools
import io
import random
from typing import NamedTuple

from PIL import Image, ImageDraw, ImageFont

from pipeline.demo.sitegen import WORDS, _document, _links, _paragraphs, _rng, _words

PAGES, IMAGES = 700, 2_000
SECTIONS = 25
JPEG_EVERY = 8  # one image in eight is a photo (JPEG); the rest are PNG screenshots
SHARED_SHARE, MISSING_SHARE = 0.1, 0.03  # pages that reuse an earlier page's image / show a missing one
LOGO = 0  # image 0 is the logo, on every page


class DocsPlan(NamedTuple):
    """Which images each page shows (k indexes, the logo included) and which pages show a missing one."""

    images: tuple[tuple[int, ...], ...]
    missing: frozenset[int]

    @property
    def distinct(self) -> int:
        return len({k for ks in self.images for k in ks})


def image_path(k: int) -> str:
    return f"/static/shots/{k}.{'jpg' if k % JPEG_EVERY == JPEG_EVERY - 1 else 'png'}"


def section_of(pages: int, n: int) -> int:
    return n * SECTIONS // pages


def section_pages(pages: int, section: int) -> range:
    first = -(-section * pages // SECTIONS)
    return range(first, -(-(section + 1) * pages // SECTIONS))


@functools.lru_cache(maxsize=4)
def plan(pages: int = PAGES, images: int = IMAGES, seed: int = 11) -> DocsPlan:
    """Images 1..images-1 spread evenly over the pages; every page also shows the logo."""
    rng = _rng(seed, "docs-plan")
    shown: list[tuple[int, ...]] = []
    for n in range(pages):
        own = range(1 + n * (images - 1) // pages, 1 + (n + 1) * (images - 1) // pages)
        ks = [LOGO, *own]
        if n and rng.random() < SHARED_SHARE:
            ks.append(rng.choice(shown[rng.randrange(n)][1:] or (LOGO,)))
        shown.append(tuple(dict.fromkeys(ks)))
    missing = frozenset(n for n in range(pages) if rng.random() < MISSING_SHARE)
    return DocsPlan(tuple(shown), missing)


def _head(seed: int) -> str:
    rng = _rng(seed, "docs-css")
    rules = [f".{w}-{i} {{ margin: {i % 7}px {i % 5}px; color: #{rng.randrange(16**6):06x}; }}"
             for i, w in enumerate(rng.choices(WORDS, k=200))]  # fmt: skip
    return f"<style>\n{chr(10).join(rules)}\n</style>\n"


@functools.lru_cache(maxsize=4)
def _titles(pages: int, seed: int) -> tuple[str, ...]:
    rng = _rng(seed, "docs-titles")
    return tuple(" ".join(_words(rng, rng.randint(2, 4))).capitalize() for _ in range(pages))


def _sidebar(pages: int, seed: int, n: int) -> str:
    """Every section's first page, and every page of the current section: ~55 links, as docs sidebars do."""
    titles = _titles(pages, seed)
    current = section_of(pages, n)
    items = []
    for section in range(SECTIONS):
        first = section_pages(pages, section)[0]
        items.append((f"/docs/{first}.html", f"{section + 1}. {titles[first]}"))
        if section == current:
            items += [(f"/docs/{p}.html", titles[p]) for p in section_pages(pages, section)]
    return f'<nav class="sidebar">\n{_links(items)}\n</nav>\n'


def _code(rng: random.Random) -> str:
    lines = [f"{rng.choice(WORDS)}_{i} = {rng.choice(WORDS)}({rng.randrange(100)}, {rng.choice(WORDS)!r})"
             for i in range(rng.randint(4, 10))]  # fmt: skip
    return "<pre><code>" + "\n".join(lines) + "</code></pre>"


@functools.lru_cache(maxsize=1024)
def page_html(pages: int, images: int, seed: int, n: int) -> bytes:
    """Page n: the frame (sidebar, breadcrumbs, previous/next), sections of text and code, its figures."""
    rng = _rng(seed, "docs-page", n)
    titles = _titles(pages, seed)
    shown = plan(pages, images, seed)
    section = section_of(pages, n)
    first = section_pages(pages, section)[0]
    crumbs = f'<p class="crumbs"><a href="/">Docs</a> / <a href="/docs/{first}.html">{titles[first]}</a></p>'
    figures = [f'<figure><img src="{image_path(k)}" alt="{" ".join(_words(rng, 3))}"><figcaption>'
               f"{' '.join(_words(rng, 5))}</figcaption></figure>" for k in shown.images[n][1:]]  # fmt: skip
    if n in shown.missing:
        figures.append(f'<figure><img src="/static/missing/{n}.png" alt="moved"></figure>')
    parts = []
    for index in range(9):
        parts.append(f"<h2>{' '.join(_words(rng, 3)).capitalize()}</h2>\n{_paragraphs(rng)}")
        if index % 3 == 0:
            parts.append(_code(rng))
        if index < len(figures):
            parts.append(figures[index])
    parts += figures[9:]
    pager = [(f"/docs/{p}.html", label) for p, label in ((n - 1, "Previous"), (n + 1, "Next")) if 0 <= p < pages]
    logo = f'<header><a href="/"><img src="{image_path(LOGO)}" alt="logo"></a></header>\n'
    body = f"{logo}{_sidebar(pages, seed, n)}{crumbs}\n<main>\n{chr(10).join(parts)}\n</main>\n{_links(pager)}"
    return _document(titles[n], body, _head(seed))


def index_html(pages: int, seed: int) -> bytes:
    titles = _titles(pages, seed)
    items = [(f"/docs/{section_pages(pages, s)[0]}.html", f"{s + 1}. {titles[section_pages(pages, s)[0]]}")
             for s in range(SECTIONS)]  # fmt: skip
    return _document("Documentation", f"<p>{pages} pages of documentation.</p>\n{_links(items)}", _head(seed))


# -- the images ----------------------------------------------------------------------------
_SCREEN_SIZES = ((480, 300), (560, 350), (640, 400), (720, 450), (800, 500))


def _palette(rng: random.Random) -> tuple[tuple[int, int, int], ...]:
    return tuple((rng.randrange(40, 230), rng.randrange(40, 230), rng.randrange(40, 230)) for _ in range(4))


def _screenshot(rng: random.Random, k: int) -> bytes:
    """A UI screenshot: window bar, sidebar, lines of text, buttons, a chart; PNG, 10-60 KB."""
    w, h = rng.choice(_SCREEN_SIZES)
    accent, second, third, chart = _palette(rng)
    image = Image.new("RGB", (w, h), (248, 248, 246))
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=12)
    draw.rectangle((0, 0, w, 28), fill=accent)
    draw.text((10, 7), f"docs {k} - {' '.join(rng.choices(WORDS, k=3))}", font=font, fill=(255, 255, 255))
    side = rng.randrange(w // 6, w // 4)
    draw.rectangle((0, 28, side, h), fill=(236, 238, 240))
    for row in range(40, h - 10, 26):
        draw.text((10, row), " ".join(rng.choices(WORDS, k=2)), font=font, fill=(60, 60, 70))
    y = 44
    while y < h * 0.55:
        draw.text((side + 16, y), " ".join(rng.choices(WORDS, k=rng.randint(4, 11))), font=font, fill=(30, 30, 30))
        y += 22
    for b in range(rng.randint(1, 4)):
        x0 = side + 16 + b * 96
        draw.rounded_rectangle((x0, y + 6, x0 + 84, y + 32), 6, fill=(second, third)[b % 2])
        draw.text((x0 + 10, y + 12), rng.choice(WORDS), font=font, fill=(255, 255, 255))
    top, bottom = int(y + 48), h - 16
    if bottom - top > 40:  # a chart: a filled area under a random walk, with grid lines
        draw.rectangle((side + 16, top, w - 16, bottom), outline=(200, 200, 200))
        level = (top + bottom) // 2
        points = [(side + 16, bottom)]
        for x in range(side + 16, w - 16, 6):
            level = max(top + 4, min(bottom - 4, level + rng.randint(-9, 9)))
            points.append((x, level))
        points.append((w - 16, bottom))
        draw.polygon(points, fill=(*chart, 255))
        for gy in range(top, bottom, 24):
            draw.line((side + 16, gy, w - 16, gy), fill=(225, 225, 225))
    out = io.BytesIO()
    image.save(out, "PNG", compress_level=6)
    return out.getvalue()


def _photo(rng: random.Random) -> bytes:
    """A photo-like JPEG: a gradient, soft shapes and grain, 640x400-ish, quality 80."""
    w, h = rng.choice(_SCREEN_SIZES)
    mask = Image.linear_gradient("L").rotate(rng.uniform(0, 360)).crop((48, 48, 208, 208)).resize((w, h))
    a, b, c, _ = _palette(rng)
    image = Image.composite(Image.new("RGB", (w, h), a), Image.new("RGB", (w, h), b), mask)
    draw = ImageDraw.Draw(image)
    for _ in range(rng.randint(4, 9)):
        x, y, r = rng.randrange(w), rng.randrange(h), rng.randrange(20, 120)
        draw.ellipse((x - r, y - r, x + r, y + r), fill=c)
    grain = Image.effect_noise((w, h), 24)
    image = Image.blend(image, Image.merge("RGB", (grain, grain, grain)), 0.1)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=80)
    return out.getvalue()


@functools.lru_cache(maxsize=4096)
def image_bytes(seed: int, k: int) -> bytes:
    """Image k, in the format ``image_path(k)`` names; cached, since pages share some and crawls repeat."""
    rng = _rng(seed, "docs-image", k)
    return _photo(rng) if image_path(k).endswith(".jpg") else _screenshot(rng, k)


def content_type(k: int) -> str:
    return "image/jpeg" if image_path(k).endswith(".jpg") else "image/png"
