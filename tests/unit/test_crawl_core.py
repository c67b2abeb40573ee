"""Pure crawl logic: URL normalisation, scope, HTML parsing, robots.txt semantics."""

from __future__ import annotations

import pytest

from pipeline.core.html import parse_page, pick_from_srcset
from pipeline.core.robots import PARSE_LIMIT, RobotsRules
from pipeline.core.urls import Scope, normalize
from tests import reference_crawler as reference


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("HTTP://Example.ORG", "http://example.org/"),
        ("http://example.org:80/a", "http://example.org/a"),
        ("https://example.org:443/a", "https://example.org/a"),
        ("http://example.org:8080/a", "http://example.org:8080/a"),
        ("http://example.org/a/b/../c/./d#frag", "http://example.org/a/c/d"),
        ("http://example.org/a/?b=1&a=2#x", "http://example.org/a/?b=1&a=2"),
        ("http://example.org/a/..", "http://example.org/"),
        ("mailto:someone@example.org", None),
        ("javascript:void(0)", None),
        ("ftp://example.org/x", None),
        ("http://", None),
    ],
)
def test_urls_normalise_to_one_canonical_spelling(raw: str, expected: str | None) -> None:
    assert normalize(raw) == expected


def test_relative_links_resolve_against_the_page() -> None:
    assert normalize("../x.html", "http://h/a/b/c.html") == "http://h/a/x.html"
    assert normalize("/root", "http://h/a/b") == "http://h/root"
    assert normalize("?q=1", "http://h/a/b") == "http://h/a/b?q=1"


def test_scope_is_the_seed_hosts_on_any_port_plus_allowed_domains_and_their_subdomains() -> None:
    scope = Scope.of(["http://site.example:8080/"], ["docs.example"])
    assert scope.allows("http://site.example/x") and scope.allows("http://site.example:9/x")
    assert scope.allows("https://docs.example/a") and scope.allows("https://api.docs.example/a")
    assert not scope.allows("http://other.example/") and not scope.allows("http://notdocs.example/")
    assert Scope.from_json(scope.to_json()) == scope


def test_the_largest_srcset_candidate_is_chosen() -> None:
    assert pick_from_srcset("a.jpg 480w, b.jpg 960w, c.jpg 720w") == "b.jpg"
    assert pick_from_srcset("a.jpg, b.jpg 2x") == "b.jpg"
    assert pick_from_srcset("") is None


def test_a_page_yields_title_links_images_and_word_counts() -> None:
    html = b"""<html><head><title> Cats  and Dogs </title><base href="/base/"></head><body>
      <a href="one.html#top">1</a><a href="one.html">again</a><a href="mailto:x@y">m</a>
      <img src="small.png" srcset="small.png 1x, big.png 2x"><script>hidden words</script>
      <p>cats chase cats</p></body></html>"""
    info = parse_page(html, "http://h/dir/page.html")
    assert info.title == "Cats and Dogs"
    assert info.links == ["http://h/base/one.html"]
    assert info.images == ["http://h/base/big.png"]
    assert dict(info.top_words)["cats"] == 3  # the title counts, the script does not
    assert "hidden" not in dict(info.top_words)


def test_an_empty_or_broken_document_yields_nothing_rather_than_failing() -> None:
    assert parse_page(b"", "http://h/").links == []
    assert parse_page(b"\x00\xff garbage", "http://h/").title == ""


@pytest.mark.parametrize(
    ("status", "allowed"),
    [(None, False), (500, False), (503, False), (404, True), (401, True), (429, True)],
)
def test_robots_txt_status_codes_mean_what_rfc_9309_says(status: int | None, allowed: bool) -> None:
    assert RobotsRules.from_response(status).allows("http://h/any", "pipeline") is allowed


def test_an_unreachable_robots_txt_disallows_all_and_keeps_why() -> None:
    rules = RobotsRules.unreachable("timeout", "no answer within 10 s")
    assert not rules.allows("http://h/", "pipeline")
    assert (rules.reason, rules.detail) == ("timeout", "no answer within 10 s")
    assert RobotsRules.from_response(503).reason == "http_503"
    assert RobotsRules.from_json(rules.to_json()) == rules


def test_cached_robots_rules_of_the_previous_format_still_load() -> None:
    assert RobotsRules.from_json(["", False, True]) == RobotsRules(disallow_all=True)


def test_a_robots_txt_longer_than_the_parse_limit_is_cut_at_its_last_whole_line() -> None:
    line = b"Disallow: /private/area\n"
    body = b"User-agent: *\n" + line * (PARSE_LIMIT // len(line) + 10)
    text = RobotsRules.from_response(200, body).text
    assert len(text) <= PARSE_LIMIT and text.endswith("/private/area\n")
    assert len(text) >= PARSE_LIMIT - len(line)  # at least the first 500 KiB, less half a line


def test_robots_rules_use_longest_match() -> None:
    rules = RobotsRules.from_response(200, b"User-agent: *\nDisallow: /private/\nAllow: /private/open\n")
    assert not rules.allows("http://h/private/x", "pipeline")
    assert rules.allows("http://h/private/open/x", "pipeline")
    assert rules.allows("http://h/public", "pipeline")


LAZY_PAGE = b"""<html><head><meta http-equiv="Refresh" content="0; URL='/moved.html'"></head><body>
<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=" data-src="/lazy.jpg">
<img data-srcset="/small.jpg 300w, /large.jpg 900w" src="data:,">
<img src="/plain.png" data-src="/ignored.png">
<img src="data:image/png;base64,AAAA">
<map><area href="/area.html"></map><a href="/a.html">a</a></body></html>"""


def test_lazy_loaded_images_are_found_behind_their_placeholders() -> None:
    page = parse_page(LAZY_PAGE, "http://h.test/x/")
    assert page.images == ["http://h.test/lazy.jpg", "http://h.test/large.jpg", "http://h.test/plain.png"]


def test_meta_refresh_and_image_map_areas_are_links() -> None:
    page = parse_page(LAZY_PAGE, "http://h.test/x/")
    assert page.links == ["http://h.test/area.html", "http://h.test/a.html", "http://h.test/moved.html"]


def test_the_reference_crawler_reads_lazy_images_and_refreshes_the_same_way() -> None:
    page = parse_page(LAZY_PAGE, "http://h.test/x/")
    assert reference.parse_page(LAZY_PAGE.decode(), "http://h.test/x/") == (page.links, page.images)


@pytest.mark.parametrize(
    "spellings",
    [
        ["http://h/a~b", "http://h/a%7Eb", "http://h/a%7eb"],
        ["http://h/e/€", "http://h/e/%E2%82%AC", "http://h/e/%e2%82%ac"],
        ["http://h/%78%38", "http://h/x8"],
        ["http://h/café", "http://h/caf%C3%A9", "http://h/caf%c3%a9"],
        ["http://Bücher.example/", "http://xn--bcher-kva.example/", "http://BÜCHER.EXAMPLE./"],
        ["http://h/a.jpg", "http://h/a.jpg#x", "http://h//a.jpg", "http://h/./a.jpg", "http://h/a%2Ejpg"],
        ["http://h/q?x=%7e&y=€", "http://h/q?x=~&y=%E2%82%AC"],
    ],
)
def test_spellings_of_one_resource_normalise_to_one_url(spellings: list[str]) -> None:
    assert len({normalize(url) for url in spellings}) == 1


@pytest.mark.parametrize(
    ("one", "other"),
    [("http://h/a%2Fb", "http://h/a/b"), ("http://h/x?a=1&b=2", "http://h/x?b=2&a=1"), ("http://h/A", "http://h/a")],
)
def test_different_resources_stay_different(one: str, other: str) -> None:
    assert normalize(one) != normalize(other)


def test_an_allowed_domain_in_unicode_matches_its_idna_hosts() -> None:
    scope = Scope.of(["http://h.test/"], ["Bücher.example"])
    assert scope.allows(normalize("http://www.bücher.example/x") or "")
    assert scope.allows("http://xn--bcher-kva.example/")
