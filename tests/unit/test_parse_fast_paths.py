"""The parse's fast roads give exactly what the plain code they stand in for gives.

``normalize``, ``Scope.allows``, ``parse_page`` and ``parse_for_crawl`` take
string-operation shortcuts and caches for the common shapes of links and
text; each test here compares them with the straightforward definition
(``urljoin`` + ``urlsplit``, lxml.html + ``drop_tree``, the word regex,
``json.dumps``) over many odd spellings, and checks that the caches stay bounded.
"""

from __future__ import annotations

import itertools
import json
import posixpath
import re
import sys
from collections import Counter
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import idna
import lxml.html
import pytest
from yarl import URL

from pipeline.core import urls
from pipeline.core.html import STOPWORDS, TOP_WORDS_PER_PAGE, _image_source, _refresh_target, count_words, parse_page
from pipeline.core.urls import Scope, normalize, normalize_all, url_id
from workers import page_parse
from workers.page_parse import parse_for_crawl


def reference_normalize(url: str, base: str | None = None) -> str | None:
    """The definition: ``urljoin`` then ``urlsplit``, with the host IDNA-encoded and the path and
    query requoted by yarl (what aiohttp sends), as the module docstring describes it.

    Written out here rather than imported from the module's own slow road, so a
    slip there cannot hide itself: this is the independent oracle.
    """
    try:
        joined = urljoin(base, url.strip()) if base else url.strip()
        parts = urlsplit(joined)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower().rstrip(".")
    if host and not host.isascii():
        try:
            host = idna.encode(host, uts46=True).decode("ascii")
        except UnicodeError:  # idna.IDNAError is one; yarl falls back to Python's IDNA 2003 codec then
            try:
                host = host.encode("idna").decode("ascii")
            except UnicodeError:
                return None
    if scheme not in ("http", "https") or not host:
        return None
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port in (None, {"http": 80, "https": 443}[scheme]) else f"{host}:{port}"
    path, query = parts.path, parts.query
    try:
        requoted = URL("." + path + ("?" + query if query else ""))  # relative: yarl requotes, resolves no dots
        path, query = requoted.raw_path[1:], requoted.raw_query_string
    except ValueError:
        pass
    path = path or "/"
    if "." in path:
        trailing = path.endswith(("/", "/.", "/.."))
        path = "/" + posixpath.normpath(path).lstrip("/")
        if trailing and not path.endswith("/"):
            path += "/"
    return urlunsplit((scheme, netloc, path, query, ""))


SCHEMES = ["http://", "https://", "HTTP://", "HtTpS://", "//", "http:", "http:/", "http:///", "ftp://", "mailto:", ""]
HOSTS = [
    "h.test", "H.Test", "h.test:8080", "h.test:80", "h.test:443", "h.test:", "h.test:99999", "h.test:0080",
    "h.test:port", "h.test:8:8", "[::1]", "[::1]:80", "[v1.x]", "[1.2.3.4]", "user:pw@h.test", "h.", "..",
    "exämple.com", "h\u2100x", "[bad", "h]", "h%41B", "a_b-c~d", "h\t.test", "", "h?x", "h#x", "h;x",
    "Bücher.Example", "xn--bcher-kva.example", "BÜCHER.example.", "xn--zz", "é.test:8080", "[::FFFF:127.0.0.1]",
]  # fmt: skip
PATHS = [
    "", "/", "/a", "/a/b/../c", "/a/./b", "/.", "/..", "/../..", "//x", "/a//b", "/a//b.html", "/a;p", "/a;",
    "/a/b/", "/x.html", "/%2e%2e/x", "/a b", "/ü", "/a\tb", "/a\nb", "/a/..", "/.well-known/x", "/...", "/a:b",
    "/a~b", "/a%7Eb", "/a%7eb", "/e/€", "/e/%E2%82%AC", "/e/%e2%82%ac", "/%78%38", "/x8", "/café", "/caf%C3%A9",
    "/a%2Fb", "/a%2fb", "/a%zz", "/a%", "/a%3B", "/%2E/x", "/a|b", "/a[b]", "/a\"b", "/a{b}^`", "/%41%42.html",
]  # fmt: skip
QUERIES = ["", "?", "?q=1", "?a=../b", "?x=1;y=2", "?:", "?é", "?a=%7e&b=%2f", "?q=a b", "?a[]=1", "?x=%e2%82%ac"]
FRAGMENTS = ["", "#", "#f", "#f?x", "#/../"]
RELATIVE = [
    "x.html", "a/b", "a//b", "./x", "../x", "../../../x", "./../x", ".././x", ".", "..", "./", "../", "x/.", "x/..",
    ".hidden", "..x", "a:b", "x?y:z", ":x", "?", "?x", "?x#y", "#", "#x", "", "   ", "x;y", "\x01x", "ä/x", "a/",
    "a b", "x?q=/./", "x#/./", "x\ty", "-x", "%2e/x", "/", "/a", "/a/../b", "/./a", "/a/.", "//", "///x", "//h",
    "//h:80/x", "//H/x?#", "//[::1]/", "//u@h/", "/?x", "/#y", "/a;b", "/a?x;y", "http://h", "http://",
    "HTTP://H/x", "http:x", "https:/x", "http:///x", "javascript:void(0)", "data:,", "\u00a0/x\u00a0", "\x0e/x",
    "café.html", "caf%C3%A9.html", "%7Euser/", "../%2e%2e/x", "€?€", "//Bücher.example/x", "a.jpg#x",
]  # fmt: skip
BASES = [
    "http://h.test/dir/page.html", "http://h.test:8080/a/b/", "https://H.Test/", "http://h.test", "http://h.test?x=1",
    "http://h.test/a//b/c", "http://h.test/a/./b/c", "http://h.test/a;p/b;q", "https://h.test/a/b;", "http://h.test/a#f",
    "ftp://h/x", "http://[::1]:8080/a/", "http://[bad/", "HTTP://h.test/x", "http://user@h.test/p/", "http:///x",
    "mailto:x", "", "http://h.test/a\t/b", "http://h.test/a/b?q#f", "http://h.test/..", "http://exämple.com/a/",
    "//h.test/x", "/x/y", "http://h.test:99999/a/", " http://h.test/x/", "http://h.test/a b/c", "http://h.test/x:y/z",
]  # fmt: skip


def spellings() -> list[str]:
    absolute = ["".join(p) for p in itertools.product(SCHEMES, HOSTS, PATHS[::6], QUERIES[:3:2], FRAGMENTS[2:3])]
    paths = ["".join(p) for p in itertools.product(PATHS, QUERIES, FRAGMENTS[:3])]
    relative = ["".join(p) for p in itertools.product(RELATIVE, ["", "y.html", "a/./b"], QUERIES[:3])]
    return sorted(set(absolute + paths + relative))


SPELLINGS = spellings()


@pytest.mark.parametrize("base", BASES)
def test_normalize_agrees_with_urljoin_and_urlsplit_on_odd_spellings(base: str) -> None:
    expected = [reference_normalize(href, base) for href in SPELLINGS]
    assert [normalize(href, base) for href in SPELLINGS] == expected
    assert [normalize(href, base) for href in SPELLINGS] == expected  # again, from the cache
    assert normalize_all(SPELLINGS, base) == expected


def test_the_fast_roads_are_taken_for_the_usual_link_shapes() -> None:
    base = urls._base("http://h.test:8080/dir/page.html")
    assert base is not None
    usual = ["http://h.test/a", "HTTPS://x.test/", "//cdn.test/x.js", "/a/b.html", "#top", "b.html", "./b", "../b"]
    assert all(urls._fast_join(href, base) is not None for href in usual)
    assert urls._fast_canonical("http://h.test:8080/a/b.html?q=1") == "http://h.test:8080/a/b.html?q=1"


def test_canonicalisation_by_string_operations_agrees_with_urlsplit() -> None:
    for url in SPELLINGS:
        assert urls._fast_canonical(url) == urls._slow_canonical(url) == reference_normalize(url), url


def test_a_base_is_taken_apart_as_urlparse_takes_it() -> None:
    for url in [*BASES, *SPELLINGS]:
        assert urls._base_parts(url) == urls._base_parts_slow(url), url


def test_scope_reads_the_host_as_urlsplit_does() -> None:
    scope = Scope.of(["http://h.test/", "http://[::1]/", "http://exämple.com/"], ["docs.example", "test"])
    normalised = [u for b in BASES[:4] for h in SPELLINGS if (u := normalize(h, b))]
    for url in [*normalised, *SPELLINGS, *(u.upper() for u in normalised)]:
        try:
            hostname: str | None = (urlsplit(url).hostname or "").lower()
        except ValueError:
            hostname = None
        if hostname is None:
            with pytest.raises(ValueError):
                scope.allows(url)
            continue
        expected = hostname in scope.hosts or any(hostname == d or hostname.endswith("." + d) for d in scope.domains)
        assert scope.allows(url) is expected, url


def test_the_canonical_form_cache_is_bounded() -> None:
    info = urls._cached_canonical.cache_info()
    assert info.maxsize == urls.CANONICAL_CACHE_SIZE
    for n in range(urls.CANONICAL_CACHE_SIZE + 10):
        normalize(f"http://h.test/{n}")
    assert urls._cached_canonical.cache_info().currsize == urls.CANONICAL_CACHE_SIZE
    urls._cached_canonical.cache_clear()
    long_url = "http://h.test/" + "x" * urls.CANONICAL_CACHE_MAX_LEN
    assert normalize(long_url) == long_url
    assert urls._cached_canonical.cache_info().currsize == 0  # too long to keep


def test_the_member_tables_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(page_parse, "MEMBER_CACHE_SIZE", 5)
    monkeypatch.setattr(page_parse, "_members", {})
    scope = Scope.of(["http://h.test/"])
    links = [f"http://h.test/{n}" for n in range(7)]
    for _ in range(3):
        expected = json.dumps([[url_id(u), u] for u in links], separators=(",", ":"))
        assert page_parse._encode(links, scope, "p") == expected
        assert len(page_parse._member_table(scope, "p")) <= 7
    for n in range(page_parse._SCOPES_KEPT + 3):
        page_parse._encode(links, Scope.of([f"http://s{n}.test/"]), "p")
        assert sum(len(table) for table in page_parse._members.values()) <= 5 + len(links)
    assert len(page_parse._members) <= page_parse._SCOPES_KEPT
    monkeypatch.setattr(page_parse, "MEMBER_CACHE_SIZE", 1000)
    for n in range(page_parse._SCOPES_KEPT + 3):
        page_parse._encode(links, Scope.of([f"http://s{n}.test/"]), "p")
    assert len(page_parse._members) == page_parse._SCOPES_KEPT  # the least recently used scopes went


WORD = re.compile(r"[^\W\d_]{2,}")


def reference_words(text: str) -> tuple[int, list[tuple[str, int]]]:
    words = WORD.findall(text.lower())
    counts = Counter(w for w in words if w not in STOPWORDS)
    return len(words), counts.most_common(TOP_WORDS_PER_PAGE)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "a I x",
        "The cats chase the cats, and THE dogs chase cats; a b c dd.",
        "plain words \u2014 with \u2018curly quotes\u2019 \u00a9 2024 and 1,000 digits_and_underscores x2y",
        "Über café naïve façade STRASSE ß",
        "ΣΊΣΥΦΟΣ ΟΔΟΣ σίσυφος",
        "İstanbul KELVIN \u212a ǅemal ﬁsh x²y ½ Ⅻ ⓐⒷ",
        "日本語のテキスト 한국어 text",
        "zero\u200bwidth e\u0301 \ud800 lone surrogate",
        " ".join(f"w{chr(97 + n % 26)}{chr(97 + n % 7)}" for n in range(500)),
    ],
)
def test_count_words_agrees_with_the_word_regex(text: str) -> None:
    assert count_words(text) == reference_words(text)


def test_no_character_that_is_not_a_letter_lowercases_into_one() -> None:
    """What lets count_words split ASCII letters out without the regex: checked for every code point."""
    letter = re.compile(r"[^\W\d_]")
    for code in range(sys.maxunicode + 1):
        char = chr(code)
        if not letter.match(char) and char.lower() != char:
            assert not any(letter.match(c) for c in char.lower()), hex(code)


def reference_parse(body: bytes, url: str, charset: str | None) -> tuple[Any, ...]:
    """What parse_page returned before its fast roads: lxml.html, one lookup per tag, drop_tree."""
    if not body.strip():
        return ("", [], [], 0, [])
    text = body.decode(charset, errors="replace") if charset else None
    try:
        doc = lxml.html.document_fromstring(text if text is not None else body)
    except (lxml.etree.ParserError, ValueError):
        return ("", [], [], 0, [])
    base_href = next((b.get("href") for b in doc.iter("base") if b.get("href")), None)
    base = (reference_normalize(base_href, url) if base_href else url) or url
    title = " ".join((doc.findtext(".//title") or "").split())
    hrefs = [a.get("href", "") for a in doc.iter("a", "area") if a.get("href")]
    hrefs += [target for meta in doc.iter("meta") if (target := _refresh_target(meta))]
    links = list(dict.fromkeys(u for h in hrefs if (u := reference_normalize(h, base))))
    sources = [_image_source(img) for img in doc.iter("img")]
    images = list(dict.fromkeys(u for s in sources if s and (u := reference_normalize(s, base))))
    for dropped in doc.xpath("//script|//style|//noscript"):
        dropped.drop_tree()
    return (title, links, images, *reference_words(" ".join(doc.itertext())))


PIECES = [
    "word", "Über", "ΣΟΦΟΣ", "—", "©", "&amp;", "&nbsp;", "&eacute;", "&#x1F600;", "&bogus;", "<b>in</b>line",
    "foo<script>var hidden = 1;</script>bar", "a<!-- comment -->b", "<style>.x{}</style>tail", "<br>", "<p>", "</p>",
    "x<noscript>nos<img src='/ns.png'></noscript>y", "<title>Second title</title>", "<a href='/x.html'>x</a>",
    "<a href='rel/y.html?q=1#f'>y</a>", "<a href='../up.html'>up</a>", "<a href='HTTP://H.test:80/a/./b'>abs</a>",
    "<a href='//other.test/p'>p</a>", "<a href=''>e</a>", "<a href='  '>b</a>", "<a href='#f'>f</a>",
    "<a href='mailto:a@b'>m</a>", "<a href='/a;b'>s</a>", "<area href='/area.html'>", "<a>no href</a>",
    "<base href='/based/'>", "<meta http-equiv='refresh' content='0; url=/moved.html'>", "<img src='/i.png'>",
    "<img src=''>", "<xmp>raw <b>x</b></xmp>", "<textarea>ta &amp; text</textarea>",
    "<table>t<tr>u<td>v</td></tr></table>",
]  # fmt: skip


def generated_pages() -> list[tuple[bytes, str, str | None]]:
    pages = []
    for n in range(300):
        parts = [PIECES[(n * 7 + k * k) % len(PIECES)] for k in range(n % 23)]
        body = " \n"[n % 2].join(parts)
        if n % 3:
            body = f"<html><head><title>T{n} {PIECES[n % len(PIECES)]}</title></head><body>{body}</body></html>"
        charset = ("utf-8", None, "latin-1")[n % 3]
        pages.append((body.encode(charset or "utf-8", errors="replace"), f"http://h.test/d{n % 4}/p.html", charset))
    return pages


def test_parse_page_agrees_with_lxml_html_and_drop_tree() -> None:
    for body, url, charset in generated_pages():
        info = parse_page(body, url, charset)
        got = (info.title, info.links, info.images, info.word_count, info.top_words)
        assert got == reference_parse(body, url, charset), body


def test_parse_for_crawl_writes_what_json_dumps_writes() -> None:
    pages = generated_pages()
    scope = Scope.of(["http://h.test/"], ["other.test"])
    for images in (False, True):
        for parsed, (body, url, charset) in zip(parse_for_crawl(pages, scope.to_json(), images), pages, strict=True):
            info = parse_page(body, url, charset)
            found: dict[str, Any] = {"_links": [[url_id(u, "p"), u] for u in info.links if scope.allows(u)]}
            if images:
                found["_images"] = [[url_id(u, "i"), u] for u in info.images if scope.allows(u)]
                left_out = Counter(urlsplit(u).hostname for u in info.images if not scope.allows(u))
                if left_out:
                    found["_offsite"] = [[host, n] for host, n in left_out.most_common(20)]
            found["_words"] = [[w, c] for w, c in info.top_words]
            assert parsed.discoveries == "," + json.dumps(found, separators=(",", ":"))[1:-1]


def test_images_the_scope_leaves_out_are_counted_by_host() -> None:
    body = b"""<html><body><img src="/a.png"><img src="http://cdn.test/1.png"><img src="http://cdn.test/2.png">
        <img srcset="http://img.other.test/3.webp 2x"><img src="http://sub.h.test/4.png"></body></html>"""
    scope = Scope.of(["http://h.test/"], [])
    (parsed,) = parse_for_crawl([(body, "http://h.test/p.html", None)], scope.to_json(), True)
    found = json.loads("{" + parsed.discoveries[1:] + "}")
    assert [u for _, u in found["_images"]] == ["http://h.test/a.png"]
    assert found["_offsite"] == [["cdn.test", 2], ["img.other.test", 1], ["sub.h.test", 1]]


def test_no_off_site_count_when_images_are_not_asked_for() -> None:
    body = b'<html><body><img src="http://cdn.test/1.png"></body></html>'
    scope = Scope.of(["http://h.test/"], [])
    (parsed,) = parse_for_crawl([(body, "http://h.test/", None)], scope.to_json(), False)
    assert "_offsite" not in parsed.discoveries
