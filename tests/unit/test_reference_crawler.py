"""The oracle's own rules: if its URL normalisation or srcset choice were wrong, every crawl comparison would be."""

from __future__ import annotations

import pytest

from tests.reference_crawler import normalize, parse_page, pick_srcset, remove_dot_segments, resolve


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://example.com/a", "http://example.com/a"),
        ("HTTP://Example.COM/a", "http://example.com/a"),
        ("http://example.com:80/a", "http://example.com/a"),
        ("https://example.com:443/a", "https://example.com/a"),
        ("https://example.com:80/a", "https://example.com:80/a"),
        ("http://example.com:443/a", "http://example.com:443/a"),
        ("http://127.0.0.1:8080/a", "http://127.0.0.1:8080/a"),
        ("http://example.com", "http://example.com/"),
        ("http://example.com:8080", "http://example.com:8080/"),
        ("http://example.com?q=1", "http://example.com/?q=1"),
        ("http://example.com/a#frag", "http://example.com/a"),
        ("http://example.com/a?q=1#frag", "http://example.com/a?q=1"),
        ("http://example.com/#", "http://example.com/"),
        ("http://example.com/a/./b/../c", "http://example.com/a/c"),
        ("http://example.com/a/b/..", "http://example.com/a/"),
        ("http://example.com/a/b/.", "http://example.com/a/b/"),
        ("http://example.com/../../a", "http://example.com/a"),
        ("http://example.com/..", "http://example.com/"),
        ("http://example.com//a//b", "http://example.com//a//b"),  # empty segments are not dot segments
        ("http://example.com/A/B.HTML", "http://example.com/A/B.HTML"),  # paths are case-sensitive
        ("http://example.com/a?B=2&a=1&a=", "http://example.com/a?B=2&a=1&a="),  # the query as is
        ("http://example.com/a?x=../y", "http://example.com/a?x=../y"),
        ("http://example.com/a%2fb%7e", "http://example.com/a%2Fb~"),  # RFC 3986 6.2.2: %7e is ~, %2f stays
        ("http://example.com/e/%e2%82%ac", "http://example.com/e/%E2%82%AC"),
        ("http://example.com/e/\u20ac?q=\u20ac", "http://example.com/e/%E2%82%AC?q=%E2%82%AC"),
        ("http://example.com/%78%38", "http://example.com/x8"),
        ("http://example.com/a%zz", "http://example.com/a%25zz"),
        ("http://B\u00fccher.example/", "http://xn--bcher-kva.example/"),
        ("http://example.com/a?", "http://example.com/a"),
        ("  http://example.com/a \n", "http://example.com/a"),
        ("http://[::1]:8080/x", "http://[::1]:8080/x"),
        ("http://[::1]:80/x", "http://[::1]/x"),
        ("http://user:pw@Example.com:80/x", "http://user:pw@example.com/x"),
    ],
)
def test_normalize(url: str, expected: str) -> None:
    assert normalize(url) == expected
    assert normalize(expected) == expected  # idempotent


@pytest.mark.parametrize(
    "url",
    [
        "mailto:someone@example.com",
        "javascript:void(0)",
        "data:image/gif;base64,R0lGOD",
        "ftp://example.com/file",
        "file:///etc/passwd",
        "/relative/path",
        "relative.html",
        "http://",
        "http:///path",
        "http://example.com:99999/",
        "http://example.com:port/",
        "",
    ],
)
def test_normalize_refuses_what_is_not_a_crawlable_url(url: str) -> None:
    assert normalize(url) is None


@pytest.mark.parametrize(
    ("path", "expected"),
    [  # RFC 3986 section 5.4's examples, as they end up after merging
        ("/a/b/c/./../../g", "/a/g"),
        ("mid/content=5/../6", "mid/6"),
        ("/b/c/./g", "/b/c/g"),
        ("/b/c/.", "/b/c/"),
        ("/b/c/./", "/b/c/"),
        ("/b/c/..", "/b/"),
        ("/b/c/../", "/b/"),
        ("/b/c/../g", "/b/g"),
        ("/b/c/../..", "/"),
        ("/b/c/../../../g", "/g"),
        ("/b/c/g.", "/b/c/g."),
        ("/b/c/.g", "/b/c/.g"),
        ("/b/c/g..", "/b/c/g.."),
        ("/b/c/..g", "/b/c/..g"),
        ("", ""),
    ],
)
def test_remove_dot_segments(path: str, expected: str) -> None:
    assert remove_dot_segments(path) == expected


BASE = "http://h.test:8080/page/3.html"


@pytest.mark.parametrize(
    ("href", "expected"),
    [
        ("7.html", "http://h.test:8080/page/7.html"),
        ("./7.html", "http://h.test:8080/page/7.html"),
        ("../page/7.html", "http://h.test:8080/page/7.html"),
        ("/page/7.html", "http://h.test:8080/page/7.html"),
        ("/page/7.html#top", "http://h.test:8080/page/7.html"),
        ("  /page/7.html\n", "http://h.test:8080/page/7.html"),
        ("HTTP://H.TEST:8080/page/7.html", "http://h.test:8080/page/7.html"),
        ("http://h.test:8080/img/../page/7.html", "http://h.test:8080/page/7.html"),
        ("#top", BASE),
        ("?view=print", "http://h.test:8080/page/3.html?view=print"),
        ("//other.test/x", "http://other.test/x"),
        ("../../../../x", "http://h.test:8080/x"),
        ("", None),
        ("   ", None),
        ("mailto:a@b.test", None),
        ("javascript:void(0)", None),
    ],
)
def test_resolve_against_the_page(href: str, expected: str | None) -> None:
    assert resolve(BASE, href) == expected


@pytest.mark.parametrize(
    ("srcset", "expected"),
    [
        ("a.jpg 1x, b.jpg 2x", "b.jpg"),
        ("b.jpg 2x, a.jpg 1x", "b.jpg"),
        ("a.jpg, b.jpg 1.5x", "b.jpg"),  # no descriptor means 1x
        ("a.jpg 2x, b.jpg", "a.jpg"),
        ("a.jpg 480w, b.jpg 960w", "b.jpg"),
        ("b.jpg 960w,a.jpg 480w", "b.jpg"),
        ("a.jpg 100w, b.jpg 3x", "a.jpg"),  # any w descriptor: widths decide
        ("a.jpg 1x, b.jpg 1x", "a.jpg"),  # ties: the first
        ("  a.jpg   2x  ,  ", "a.jpg"),
        ("a.jpg bogus, b.jpg 1x", "b.jpg"),
        ("", None),
        (" , ", None),
    ],
)
def test_pick_srcset_takes_the_largest_candidate(srcset: str, expected: str | None) -> None:
    assert pick_srcset(srcset) == expected


def test_parse_page_collects_links_and_images_in_document_order() -> None:
    html = """<!doctype html><html><head><title>t</title></head><body>
    <a href="b.html#x">b</a> <A HREF="/C.html">c</A> <a>no href</a> <a href="">self</a>
    <a href="?x=1&amp;y=2">q</a> <a href="http://elsewhere.test/">out</a> <a href="mailto:x@y.test">m</a>
    <a href="d.html" href="e.html">dup</a>
    <img src="i.png"> <img src="j.png" srcset="j.png?w=480 480w, j.png?w=960 960w">
    <img srcset="k.png 2x, k1.png 1x"> <img src=""> <img src="data:,">
    </body></html>"""
    links, images = parse_page(html, "http://h.test/dir/page.html")
    assert links == [
        "http://h.test/dir/b.html",
        "http://h.test/C.html",
        "http://h.test/dir/page.html?x=1&y=2",
        "http://elsewhere.test/",
        "http://h.test/dir/d.html",
    ]
    # One URL per <img>: the largest srcset candidate, else src; data: and empty values are no images.
    assert images == ["http://h.test/dir/i.png", "http://h.test/dir/j.png?w=960", "http://h.test/dir/k.png"]


def test_parse_page_resolves_against_the_first_base_href() -> None:
    html = '<head><base href="/page/"><base href="/other/"></head><a href="5.html">x</a><img src="../img/0.jpg">'
    links, images = parse_page(html, "http://h.test/docs/index.html")
    assert links == ["http://h.test/page/5.html"]
    assert images == ["http://h.test/img/0.jpg"]
    # A fragment-only link resolves against the base too, as in browsers: /page/, not the page itself.
    assert parse_page('<base href="/page/"><a href="#top">t</a>', "http://h.test/docs/")[0] == ["http://h.test/page/"]
