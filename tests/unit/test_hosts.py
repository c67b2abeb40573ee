"""Hosts and domains that could exist, and URLs that could be fetched (pipeline.core.hosts)."""

from __future__ import annotations

import pytest

from pipeline.core.hosts import valid_domain, web_url_problem


@pytest.mark.parametrize("url", ["https://example.org/", "http://1.2.3.4/x", "http://[::1]:8080/", "https://Bücher.example/",
                                 "http://user:pw@example.org/", "http://localhost:5000/a.jpg"])  # fmt: skip
def test_urls_a_browser_could_fetch_pass(url: str) -> None:
    assert web_url_problem(url) is None


@pytest.mark.parametrize(
    ("url", "why"),
    [("htp://example.org/", "unsupported scheme 'htp'"), ("ftp://example.org/", "unsupported scheme 'ftp'"),
     ("http://exa mple.org/", "not a valid host name"), ("http://-x-.org/", "not a valid host name"),
     ("http://x..org/", "not a valid host name"), ("http:///path", "not a valid host name"),
     ("http://example.org:99999/", "not a valid URL")],
)  # fmt: skip
def test_urls_that_cannot_be_fetched_say_why(url: str, why: str) -> None:
    assert why in (web_url_problem(url) or "")


@pytest.mark.parametrize("name", ["cdn.example.org", "example", "bücher.example", "xn--bcher-kva.example", "a-b.c"])
def test_domains(name: str) -> None:
    assert valid_domain(name)


@pytest.mark.parametrize("name", ["", "https://x.org", "x.org/path", "*.x.org", "-x.org", "x" * 64 + ".org", "a b.org"])
def test_not_domains(name: str) -> None:
    assert not valid_domain(name)
