"""Which proxy a request goes through (HTTP_PROXY / HTTPS_PROXY / NO_PROXY), and how bad ones are refused."""

from __future__ import annotations

import pytest
from yarl import URL

from pipeline.config import Settings
from pipeline.core.errors import ConfigError
from pipeline.core.proxies import Proxies, check_proxy_url, proxy_host, redacted

PROXY = "http://user:s3cret@proxy.corp:3128"


def proxies(no_proxy: str = "", pinned: frozenset[str] = frozenset()) -> Proxies:
    found = Proxies.from_settings(PROXY, "http://tunnel.corp:8080", no_proxy, pinned)
    assert found is not None
    return found


def test_no_proxy_variable_means_every_request_goes_direct() -> None:
    assert Proxies.from_settings(None, None, "example.com") is None
    assert Proxies.from_settings("", "  ", None) is None


def test_each_scheme_takes_its_own_proxy() -> None:
    assert proxies().for_url(URL("http://example.com/a")) == PROXY
    assert proxies().for_url(URL("https://example.com/a")) == "http://tunnel.corp:8080"


def test_a_scheme_without_a_proxy_goes_direct() -> None:
    only_http = Proxies.from_settings(PROXY, None, None)
    assert only_http is not None
    assert only_http.for_url(URL("https://example.com/")) is None


@pytest.mark.parametrize("host", ["localhost", "app.localhost", "127.0.0.1", "127.8.9.10", "[::1]"])
def test_loopback_is_always_reached_directly(host: str) -> None:
    assert proxies().for_url(URL(f"http://{host}:8080/")) is None


def test_names_pinned_with_pipeline_resolve_are_reached_directly() -> None:
    assert proxies(pinned=frozenset({"Shop.Test"})).for_url(URL("http://shop.test/")) is None


@pytest.mark.parametrize(
    ("no_proxy", "url"),
    [
        ("example.com", "http://example.com/"),
        ("example.com", "http://www.example.com/"),
        (".example.com", "http://a.b.example.com/"),
        ("*.example.com", "http://a.example.com/"),
        ("other.org, EXAMPLE.com", "http://example.com/"),
        ("example.com:8080", "http://example.com:8080/"),
        ("10.0.0.0/8", "http://10.1.2.3/"),
        ("192.0.2.7", "http://192.0.2.7/"),
        ("[2001:db8::1]:80", "http://[2001:db8::1]/"),
        ("*", "https://anything.example/"),
    ],
)
def test_no_proxy_entries_send_matching_hosts_direct(no_proxy: str, url: str) -> None:
    assert proxies(no_proxy).for_url(URL(url)) is None


@pytest.mark.parametrize(
    ("no_proxy", "url"),
    [
        ("example.com", "http://notexample.com/"),
        ("example.com:8080", "http://example.com:9090/"),
        ("10.0.0.0/8", "http://11.1.2.3/"),
        ("10.0.0.0/8", "http://ten.example/"),
        ("", "http://example.com/"),
    ],
)
def test_other_hosts_still_go_through_the_proxy(no_proxy: str, url: str) -> None:
    assert proxies(no_proxy).for_url(URL(url)) == PROXY


def test_the_proxy_host_is_named_as_the_resolver_is_asked_for_it() -> None:
    assert proxy_host("http://user:pw@Proxy.Corp:3128") == "proxy.corp"


def test_credentials_never_appear_in_logs_or_reprs() -> None:
    assert redacted(PROXY) == "http://proxy.corp:3128"
    assert "s3cret" not in proxies().describe()
    assert "s3cret" not in repr(proxies())


@pytest.mark.parametrize(
    "value",
    ["socks5://proxy:1080", "proxy.corp:3128", "admin:s3cret@proxy:3128", "http://", "http://proxy:99999",
     "http://proxy:0", "http://pro xy:3128", "http://admin:s3cret@[::1]x:3128"],
)  # fmt: skip
def test_an_unusable_proxy_url_is_refused_with_what_to_write_and_never_its_password(value: str) -> None:
    with pytest.raises(ConfigError, match="proxy") as refused:
        check_proxy_url(value)
    assert "s3cret" not in str(refused.value)


def test_settings_read_the_standard_variables_in_either_case(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("http_proxy", PROXY)
    monkeypatch.setenv("HTTPS_PROXY", "http://tunnel.corp:8080")
    monkeypatch.setenv("NO_PROXY", "intranet.corp")
    found = Settings.load().proxies
    assert found is not None
    assert found.for_url(URL("http://example.com/")) == PROXY
    assert found.for_url(URL("http://wiki.intranet.corp/")) is None


def test_pipeline_variables_win_over_the_standard_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", PROXY)
    monkeypatch.setenv("PIPELINE_HTTP_PROXY", "http://other.corp:1")
    found = Settings.load().proxies
    assert found is not None and found.http == "http://other.corp:1"


def test_a_bad_proxy_variable_stops_only_what_fetches_and_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "socks5://user:s3cret@proxy:1080")
    settings = Settings.load()  # every CLI command loads settings: they must not fail for this
    with pytest.raises(ConfigError, match=r"PIPELINE_HTTP_PROXY \(or HTTP_PROXY\)") as refused:
        _ = settings.proxies
    assert "s3cret" not in str(refused.value)
