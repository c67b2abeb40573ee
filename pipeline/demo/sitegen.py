"""The demo site's content: a pure function of (pages, seed) and the request's origin.

Kept apart from the server (``pipeline.demo.site``) so what the site *says* and
how it is *served* can be read separately. Nothing here does I/O.
"""

from __future__ import annotations

import functools
import io
import random
import re
from typing import NamedTuple

from PIL import Image, ImageDraw

IMAGE_COUNT = 60
PRIVATE_PAGES = 12
EXTS = ("jpg", "png", "webp", "gif")
INTERNAL_HOST = "127.0.0.2"  # the "other" loopback host that scope and SSRF tests use
ROBOTS_TXT = "User-agent: *\nDisallow: /private/\n"
PDF_BODY = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
CALENDAR_START = "/calendar/2024/01/"
CONTENT_TYPES = {"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp", "gif": "image/gif"}
_FORMATS = {"jpg": "JPEG", "png": "PNG", "webp": "WEBP", "gif": "GIF"}
HOST_RE = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::(\d{1,5}))?$")
# No stopwords, and Zipf-weighted below, so "top words" of a crawl are meaningful and stable.
_WORD_TEXT = (
    "river stone harbor lantern meadow copper falcon orchard signal timber canyon ember glacier "
    "willow beacon quarry thistle anchor cobalt prairie summit tundra juniper marble cinder "
    "harvest compass delta fjord garnet hollow island jasmine kestrel lagoon mosaic nectar "
    "obsidian pebble quartz ripple saffron tangle umber valley walnut yarrow zephyr basalt "
    "cedar dune estuary fern granite heron ivory kelp lichen mangrove nimbus otter pine"
)
WORDS = tuple(_WORD_TEXT.split())
_WEIGHTS = [1 / (rank + 1) for rank in range(len(WORDS))]
# Pages 1..11 carry one of these each, so a crawl to depth 2 from / meets every special case.
_SPECIALS = ("chain", "loop", "slow", "calendar", "pdf", "external", "error", "docs", "second", "query", "badimg")
MIN_PAGES = 20


class Origin(NamedTuple):
    """Scheme-less origin as the client addressed it; every absolute link in a page derives from it."""

    host: str
    port: int | None

    @property
    def base(self) -> str:
        return f"http://{self.host}" + (f":{self.port}" if self.port is not None else "")

    @property
    def shouted(self) -> str:  # scheme and host in upper case: must normalise to `base`
        return self.base.upper()

    @property
    def with_port(self) -> str:  # the port always explicit (":80" when the client used the default)
        return f"http://{self.host}:{self.port or 80}"

    @property
    def internal(self) -> str:
        return f"http://{INTERNAL_HOST}:{self.port or 80}"


def _rng(seed: int, *parts: object) -> random.Random:
    """A generator per (seed, item): str seeds hash with SHA-512, so runs and PYTHONHASHSEED don't matter."""
    return random.Random(":".join(map(str, (seed, *parts))))


def _words(rng: random.Random, count: int) -> list[str]:
    return rng.choices(WORDS, weights=_WEIGHTS, k=count)


def _paragraphs(rng: random.Random) -> str:
    out = []
    for _ in range(rng.randint(2, 4)):
        sentences = (" ".join(_words(rng, rng.randint(5, 12))) for _ in range(rng.randint(2, 5)))
        out.append("<p>" + " ".join(s.capitalize() + "." for s in sentences) + "</p>")
    return "\n".join(out)


def _document(title: str, body: str, head: str = "") -> bytes:
    return (
        f'<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n{head}<title>{title}</title>\n'
        f'</head>\n<body>\n<h1 id="top">{title}</h1>\n{body}\n<p><a href="#top">Back to top</a></p>\n'
        "</body>\n</html>\n"
    ).encode()


def _links(items: list[tuple[str, str]]) -> str:
    return "<ul>\n" + "\n".join(f'<li><a href="{href}">{text}</a></li>' for href, text in items) + "\n</ul>"


def _page_href(rng: random.Random, origin: Origin, target: int) -> str:
    """One of the spellings of /page/{target}.html that a crawler must normalise to the same URL."""
    path, name = f"/page/{target}.html", f"{target}.html"
    style = rng.choice(("abs", "shout", "port", "root", "parent", "sibling", "dot", "fragment", "padded"))
    return {
        "abs": origin.base + path,
        "shout": origin.shouted + path,
        "port": origin.with_port + path,
        "root": path,
        "parent": ".." + path,
        "sibling": name,
        "dot": "./" + name,
        "fragment": f"{path}#{rng.choice(WORDS)}",
        "padded": f"  {path}\n",
    }[style]


def image_path(k: int) -> str:
    return f"/img/{k}.{EXTS[k % len(EXTS)]}"


def _img_tag(rng: random.Random, origin: Origin, k: int) -> str:
    """Plain or srcset (x or w descriptors, either order); the largest candidate is a distinct URL."""
    path = image_path(k)
    src = rng.choice((path, ".." + path, origin.base + path))
    alt = " ".join(_words(rng, 2))
    kind = rng.choices(("plain", "x", "w", "w-only"), weights=(12, 2, 2, 1))[0]
    if kind == "plain":
        return f'<img src="{src}" alt="{alt}">'
    unit, small, large = ("d", 1, 2) if kind == "x" else ("w", 480, 960)
    suffix = "x" if unit == "d" else "w"
    candidates = [f"{path}?{unit}={small} {small}{suffix}", f"{path}?{unit}={large} {large}{suffix}"]
    if rng.random() < 0.5:
        candidates.reverse()
    srcset = f'srcset="{", ".join(candidates)}"'
    if kind == "w-only":
        return f'<img {srcset} sizes="(max-width: 600px) 480px, 960px" alt="{alt}">'
    return f'<img src="{src}" {srcset} alt="{alt}">'


@functools.lru_cache(maxsize=4)
def _specials(seed: int) -> dict[int, str]:
    """Which page carries which special link: pages 1..11, all linked from the index (depth 1), shuffled by seed."""
    order = _rng(seed, "specials").sample(_SPECIALS, len(_SPECIALS))
    return dict(enumerate(order, start=1))


def _special_links(kind: str, origin: Origin) -> tuple[list[tuple[str, str]], list[str]]:
    links: dict[str, list[tuple[str, str]]] = {
        "chain": [("/go/1", "an old address")],
        "loop": [("/loop/a", "round and round")],
        "slow": [("/slow.html", "a slow page")],
        "calendar": [(CALENDAR_START, "the calendar")],
        "pdf": [("/files/report.pdf", "the report (PDF)")],
        "external": [
            ("http://example.invalid/x", "elsewhere"),
            ("mailto:someone@example.invalid", "write to us"),
            ("javascript:void(0)", "do nothing"),
        ],
        "error": [("/error.html", "a broken server")],
        "docs": [("/docs/index.html", "the docs")],
        "second": [(origin.internal + "/page/1.html", "the mirror"), ("/go/away", "moved away")],
        "query": [("/page/1.html?view=print&amp;lang=en", "printable")],
    }
    images = {
        "external": ['<img src="http://example.invalid/logo.png" alt="remote">', '<img src="data:," alt="inline">'],
        "badimg": ['<img src="/img/999.png" alt="missing">'],
    }
    return links.get(kind, []), images.get(kind, [])


NAV_LINKS, FOOTER_LINKS = 48, 16


@functools.lru_cache(maxsize=8)
def _chrome(pages: int, seed: int) -> tuple[str, str, str]:
    """What a real site wraps every page in: inline CSS and JS, a menu and a footer of site-wide links.

    Only with ``chrome=True`` (the crawl benchmark's "realistic pages" site):
    real HTML pages weigh 20-30 KB, mostly this, and carry the same few dozen
    links on every page, which a crawler must parse and drop as already seen.
    """
    rng = _rng(seed, "chrome")
    rules = [
        f".{w}-{i} {{ margin: {i % 7}px {i % 5}px; color: #{rng.randrange(16**6):06x}; "
        f"font: {12 + i % 6}px/1.4 sans-serif; }}"
        for i, w in enumerate(rng.choices(WORDS, k=120))
    ]
    script = "\n".join(
        f"window.{w}{i} = function (e) {{ return document.querySelectorAll('.{w}-{i}').length + {i}; }};"
        for i, w in enumerate(rng.choices(WORDS, k=60))
    )
    head = f"<style>\n{chr(10).join(rules)}\n</style>\n<script>\n{script}\n</script>\n"
    menu = [(f"/page/{k % pages}.html", " ".join(_words(rng, 2)).title()) for k in range(1, NAV_LINKS + 1)]
    foot = [(f"/page/{(k * 37) % pages}.html", " ".join(_words(rng, 2))) for k in range(1, FOOTER_LINKS + 1)]
    return head, f'<nav class="menu">\n{_links(menu)}\n</nav>\n', f"<footer>\n{_links(foot)}\n</footer>\n"


@functools.lru_cache(maxsize=8192)
def page_html(pages: int, seed: int, origin: Origin, n: int, chrome: bool = False) -> bytes:
    """Page n: text, 3-6 page links (n+1 always, so all pages are reachable), 0-3 images, specials.

    ``chrome`` wraps it like a real site's page (``_chrome``) with more text: ~20 KB.
    """
    rng = _rng(seed, "page", n)
    title = f"Page {n}: " + " ".join(w.capitalize() for w in _words(rng, 2))
    text = _paragraphs(rng)
    extra = rng.randint(2, 5)
    nxt = (n + 1) % pages
    targets = [nxt, *[t for t in rng.sample(range(pages), extra + 2) if t not in (n, nxt)][:extra]]
    links = [(_page_href(rng, origin, t), " ".join(_words(rng, rng.randint(1, 3)))) for t in targets]
    count = rng.randint(0, 3)
    first = [n] if n < IMAGE_COUNT else []
    ks = first + rng.sample(range(IMAGE_COUNT), max(count - len(first), 0))
    images = [_img_tag(rng, origin, k) for k in ks]
    if ks and rng.random() < 0.1:
        links.append((image_path(ks[0]), "full size"))
    if rng.random() < 0.07:
        links.append((f"/missing/{n}.html", "gone"))
    if rng.random() < 0.05:
        links.append((f"/private/{rng.randrange(PRIVATE_PAGES)}.html", "members only"))
    more_links, more_images = _special_links(_specials(seed).get(n, ""), origin)
    body = "\n".join((text, _links(links + more_links), *images, *more_images))
    if not chrome:
        return _document(title, body)
    head, nav, footer = _chrome(pages, seed)
    sections = "\n".join(f"<h2>{' '.join(_words(rng, 3))}</h2>\n{_paragraphs(rng)}" for _ in range(6))
    return _document(title, f"{nav}<main>\n{body}\n{sections}\n</main>\n{footer}", head)


def index_html(pages: int, origin: Origin) -> bytes:
    items = [("/page/0.html", "Start here")] + [
        (f"page/{n}.html", f"Chapter {n}") for n in range(1, len(_SPECIALS) + 1)
    ]
    items += [(f"{origin.base}/page/{pages // 2}.html", "The middle"), (origin.shouted, "Home")]
    return _document("Demo site", f"<p>A generated site of {pages} pages.</p>\n{_links(items)}")


def private_html(p: int) -> bytes:
    items = [(f"../page/{p}.html", "back to the public pages")]
    items += [(f"{p + 1}.html", "next secret")] if p + 1 < PRIVATE_PAGES else []
    return _document(f"Private {p}", f"<p>Crawlers that obey robots.txt never see this.</p>\n{_links(items)}")


def calendar_html(year: int, month: int) -> bytes:
    """Each month links to the next and the previous one: infinitely many URLs, a classic crawler trap."""
    nxt = (year + month // 12, month % 12 + 1)
    prev = (year - 1, 12) if month == 1 else (year, month - 1)
    items = [(f"/calendar/{nxt[0]}/{nxt[1]:02d}/", "next month"), ("/", "home")]
    if prev[0] >= 0:
        items.insert(0, (f"../../{prev[0]}/{prev[1]:02d}/", "previous month"))
    return _document(f"Calendar {year}-{month:02d}", f"<p>Nothing happens this month.</p>\n{_links(items)}")


# Relative links on the docs page only work through <base href>: without it they would point into /docs/.
DOCS_HTML = _document(
    "Docs", _links([("5.html", "page five"), ("15.html", "page fifteen")]) + '\n<img src="../img/0.jpg" alt="logo">',
    '<base href="/page/">\n',
)  # fmt: skip
ERROR_HTML = _document("Error", '<p>Something went wrong.</p>\n<p><a href="/lost-and-found.html">help</a></p>')
NOT_FOUND_HTML = ERROR_HTML.replace(b"Error", b"Not found")
SLOW_HTML = _document("Slow", '<p>Worth the wait.</p>\n<p><a href="/page/1.html">onwards</a></p>')
FIXED_ROUTES = {  # path -> (status, content type, body)
    "/robots.txt": (200, "text/plain; charset=utf-8", ROBOTS_TXT.encode()),
    "/files/report.pdf": (200, "application/pdf", PDF_BODY),
    "/docs/index.html": (200, "text/html; charset=utf-8", DOCS_HTML),
    "/error.html": (500, "text/html; charset=utf-8", ERROR_HTML),
}
# path -> (status, Location): the chain spells Location root-relative, absolute, then relative to /go/3.
REDIRECTS = {
    "/go/1": (302, "/go/2"),
    "/go/2": (301, "{base}/go/3"),
    "/go/3": (302, "../page/7.html"),
    "/go/away": (302, "{internal}/page/1.html"),
    "/loop/a": (302, "b"),
    "/loop/b": (302, "/loop/a"),
}


@functools.lru_cache(maxsize=256)
def image_bytes(seed: int, k: int) -> bytes:
    """Image k: small, deterministic, in the format its extension says; cached since many pages share it."""
    rng = _rng(seed, "image", k)
    ext = EXTS[k % len(EXTS)]
    size = (rng.randrange(64, 241), rng.randrange(48, 181))
    image = Image.new("RGB", size, tuple(rng.randrange(256) for _ in range(3)))
    draw = ImageDraw.Draw(image)
    for _ in range(rng.randint(2, 5)):
        x0, y0 = rng.randrange(size[0]), rng.randrange(size[1])
        box = (x0, y0, x0 + rng.randrange(8, size[0]), y0 + rng.randrange(8, size[1]))
        fill = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=fill)
    out = io.BytesIO()
    image.save(out, _FORMATS[ext], **({"quality": 80} if ext in ("jpg", "webp") else {}))
    return out.getvalue()
