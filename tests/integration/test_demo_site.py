"""The demo site serves every special route as documented, identically each run, and the oracle's figures hold.

The crawl-job tests compare against ``reference_crawl`` over this site, so the
figures below are the contract: if the site's generator changes, they change
here first, on purpose.
"""

from __future__ import annotations

import http.client
import io
import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from pipeline.demo.site import DemoSite
from pipeline.demo.sitegen import INTERNAL_HOST, ROBOTS_TXT, image_path
from tests.helpers import wait_until
from tests.reference_crawler import ReferenceResult, reference_crawl

REPO = Path(__file__).resolve().parents[2]
SLOW_S = 0.3
HTML = "text/html; charset=utf-8"


@pytest.fixture(scope="module")
def site() -> Iterator[DemoSite]:
    with DemoSite(slow_s=SLOW_S) as running:
        yield running


def get(
    site: DemoSite, path: str, host: str | None = None, timeout: float = 10
) -> tuple[int, http.client.HTTPResponse, bytes]:
    """One raw GET (no redirects followed, the path sent verbatim), optionally with another Host header."""
    conn = http.client.HTTPConnection(site.host, site.port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Host": host} if host else {})
        response = conn.getresponse()
        return response.status, response, response.read()
    finally:
        conn.close()


@pytest.mark.parametrize(
    ("path", "status", "content_type"),
    [
        ("/", 200, HTML),
        ("/page/0.html", 200, HTML),
        ("/page/299.html", 200, HTML),
        ("/page/300.html", 404, HTML),
        ("/page/007.html", 404, HTML),
        ("/page/", 404, HTML),
        ("/private/0.html", 200, HTML),
        ("/private/12.html", 404, HTML),
        ("/missing/3.html", 404, HTML),
        ("/lost-and-found.html", 404, HTML),
        ("/error.html", 500, HTML),
        ("/docs/index.html", 200, HTML),
        ("/calendar/2024/01/", 200, HTML),
        ("/calendar/99999/12/", 200, HTML),
        ("/calendar/2024/13/", 404, HTML),
        ("/calendar/2024/1/", 404, HTML),
        ("/files/report.pdf", 200, "application/pdf"),
        ("/robots.txt", 200, "text/plain; charset=utf-8"),
        ("/img/0.jpg", 200, "image/jpeg"),
        ("/img/1.png", 200, "image/png"),
        ("/img/2.webp", 200, "image/webp"),
        ("/img/3.gif", 200, "image/gif"),
        ("/img/59.gif", 200, "image/gif"),
        ("/img/0.png", 404, HTML),
        ("/img/60.jpg", 404, HTML),
        ("/img/999.png", 404, HTML),
    ],
)
def test_routes_answer_as_documented(site: DemoSite, path: str, status: int, content_type: str) -> None:
    got, response, body = get(site, path)
    assert (got, response.getheader("Content-Type")) == (status, content_type)
    if content_type.startswith("image/"):
        with Image.open(io.BytesIO(body)) as image:
            assert image.format == {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP", "gif": "GIF"}[content_type[6:]]
    if status >= 400:  # error bodies carry a bait link that only a crawler parsing them would follow
        assert b'href="/lost-and-found.html"' in body


@pytest.mark.parametrize(
    ("path", "status", "location"),
    [
        ("/go/1", 302, "/go/2"),
        ("/go/2", 301, "{url}/go/3"),
        ("/go/3", 302, "../page/7.html"),
        ("/loop/a", 302, "b"),
        ("/loop/b", 302, "/loop/a"),
        ("/go/away", 302, f"http://{INTERNAL_HOST}:{{port}}/page/1.html"),
        ("/hops/0", 302, "/page/0.html"),
        ("/hops/5", 302, "/hops/4"),
    ],
)
def test_redirects(site: DemoSite, path: str, status: int, location: str) -> None:
    got, response, _ = get(site, path)
    assert (got, response.getheader("Location")) == (status, location.format(url=site.url, port=site.port))


def test_robots_txt_disallows_the_private_section(site: DemoSite) -> None:
    assert get(site, "/robots.txt")[2] == ROBOTS_TXT.encode() == b"User-agent: *\nDisallow: /private/\n"


def test_slow_page_waits_then_links_onwards(site: DemoSite) -> None:
    started = time.monotonic()
    status, _, body = get(site, "/slow.html")
    assert time.monotonic() - started >= SLOW_S
    assert status == 200
    assert b'<a href="/page/1.html">' in body


def test_the_site_contains_every_awkward_spelling(site: DemoSite) -> None:
    """What the crawl tests rely on is really there (a generator change could silently drop a case)."""
    pages = [get(site, f"/page/{n}.html")[2].decode() for n in range(site.pages)]
    everything = "\n".join(pages)
    hrefs = re.findall(r'href="([^"]*)"', everything)
    base = site.url
    assert any(h.startswith(base.upper() + "/page/") for h in hrefs)  # HTTP://127.0.0.1:PORT/...
    assert any(h.startswith(base + "/page/") for h in hrefs)
    assert any(h.startswith("../page/") for h in hrefs)
    assert any(h.startswith("./") for h in hrefs)
    assert any(re.fullmatch(r"\d+\.html", h) for h in hrefs)
    assert any(re.fullmatch(r"/page/\d+\.html#\w+", h) for h in hrefs)
    assert any(h != h.strip() for h in hrefs)
    assert any(h.startswith("/missing/") for h in hrefs)
    assert any(h.startswith("/private/") for h in hrefs)
    assert any(re.fullmatch(r"/img/\d+\.\w+", h) for h in hrefs)  # a link to an image: a non-HTML resource
    assert 'srcset="' in everything and " 2x" in everything and " 960w" in everything
    assert all(len(re.findall(r'<a href="(?!#)', page)) >= 3 for page in pages)
    for special in ["/go/1", "/loop/a", "/slow.html", "/calendar/2024/01/", "/files/report.pdf", "/error.html",
                    "/docs/index.html", "/go/away", "http://example.invalid/x", "mailto:", "javascript:",
                    f"http://{INTERNAL_HOST}:{site.port}/page/1.html", "/page/1.html?view=print&amp;lang=en",
                    'src="/img/999.png"']:  # fmt: skip
        assert sum(special in page for page in pages) == 1, special
    index = get(site, "/")[2].decode()
    assert all(f'href="page/{n}.html"' in index for n in range(1, 12))  # the pages carrying the specials


def test_absolute_links_follow_the_host_header(site: DemoSite) -> None:
    _, _, body = get(site, "/", host=f"localhost:{site.port}")
    assert f'href="http://localhost:{site.port}/page/150.html"'.encode() in body
    _, _, body = get(site, "/", host="[garbage")
    assert f'href="{site.url}/page/150.html"'.encode() in body  # not a host: the bound address


def test_two_instances_serve_the_same_bytes_and_another_seed_another_site() -> None:
    paths = ["/", "/robots.txt", "/docs/index.html", "/calendar/2024/01/", "/files/report.pdf", "/error.html"]
    paths += [f"/page/{n}.html" for n in range(0, 300, 7)] + [image_path(k) for k in range(60)]
    with DemoSite() as first, DemoSite() as second, DemoSite(seed=12) as other:
        for path in paths:
            assert get(first, path, host="demo.test")[2] == get(second, path, host="demo.test")[2], path
        assert get(first, "/page/5.html", host="demo.test")[2] != get(other, "/page/5.html", host="demo.test")[2]
        assert get(first, "/img/5.png")[2] != get(other, "/img/5.png")[2]


def test_hits_count_paths_with_their_query_and_reset() -> None:
    with DemoSite() as site:
        for path in ["/page/1.html", "/page/1.html?x=1", "/page/1.html?x=1", "/nowhere", "/go/1"]:
            get(site, path)
        assert site.hits == {"/page/1.html": 1, "/page/1.html?x=1": 2, "/nowhere": 1, "/go/1": 1}
        site.hits.clear()  # a snapshot: clearing the copy changes nothing
        assert sum(site.hits.values()) == 5
        assert site.max_concurrency == 1
        site.reset_counters()
        assert (site.hits, site.max_concurrency) == ({}, 0)


def test_max_concurrency_counts_requests_in_flight_at_once() -> None:
    with DemoSite(slow_s=1.0) as site:
        threads = [threading.Thread(target=get, args=(site, f"/slow.html?i={i}")) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert site.max_concurrency == 8
        get(site, "/")
        assert site.max_concurrency == 8  # a maximum, not the current value


def test_stop_is_prompt_with_a_client_stuck_on_the_slow_page() -> None:
    site = DemoSite(slow_s=60)
    site.start()
    conn = http.client.HTTPConnection(site.host, site.port, timeout=10)
    try:
        conn.request("GET", "/slow.html")
        wait_until(lambda: site.max_concurrency >= 1, 5, "the request to reach the slow page", poll=0.01)
        started = time.monotonic()
        site.stop()
        assert time.monotonic() - started < 5
    finally:
        conn.close()


@pytest.mark.parametrize(
    "kwargs", [{"host": "0.0.0.0"}, {"host": "192.168.1.10"}, {"host": "example.com"}, {"second_host": "10.0.0.2"}]
)
def test_only_loopback_addresses_are_accepted(kwargs: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="loopback"):
        DemoSite(**kwargs)  # type: ignore[arg-type]


def test_start_raises_when_the_port_is_taken() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        site = DemoSite(port=taken.getsockname()[1])
        with pytest.raises(OSError):
            site.start()
        site.stop()


def test_second_host_answers_on_the_same_port() -> None:
    site = DemoSite(slow_s=0.1, second_host=INTERNAL_HOST)
    try:
        site.start()
    except OSError as exc:  # some sandboxes route only 127.0.0.1
        pytest.skip(f"cannot bind {INTERNAL_HOST}: {exc}")
    try:
        assert site.second_url == f"http://{INTERNAL_HOST}:{site.port}"
        conn = http.client.HTTPConnection(INTERNAL_HOST, site.port, timeout=10)
        conn.request("GET", "/page/3.html")
        body = conn.getresponse().read()
        conn.close()
        assert body == get(site, "/page/3.html", host=f"{INTERNAL_HOST}:{site.port}")[2]
        # Scope: the /go/away redirect and the mirror link lead to 127.0.0.2 only when it is allowed.
        narrow = reference_crawl([site.url + "/"], max_depth=2)
        wide = reference_crawl([site.url + "/"], max_depth=2, allowed_hosts={INTERNAL_HOST})
    finally:
        site.stop()
    assert narrow.pages_failed[f"{site.url}/go/away"] == "out_of_scope"
    assert f"{site.url}/go/away" in wide.pages_ok
    assert f"{site.second_url}/page/1.html" in wide.pages_ok
    assert not any(INTERNAL_HOST in url for url in narrow.depth)


# -- the reference crawler over the site: the figures the crawl jobs must reproduce ------------------------------


@pytest.fixture(scope="module")
def crawl3(site: DemoSite) -> tuple[ReferenceResult, Counter[str]]:
    """The depth-3 crawl and the requests it made."""
    site.reset_counters()
    result = reference_crawl([site.url + "/"], max_depth=3)
    return result, site.hits


@pytest.fixture(scope="module")
def crawl6(site: DemoSite) -> ReferenceResult:
    return reference_crawl([site.url + "/"], max_depth=6)


def test_reference_crawl_to_depth_3(site: DemoSite, crawl3: tuple[ReferenceResult, Counter[str]]) -> None:
    result = crawl3[0]
    assert (len(result.pages_ok), len(result.other_ok), len(result.pages_failed), len(result.images)) == (
        169,
        4,
        9,
        116,
    )
    assert result.failures() == {"http_404": 4, "http_500": 1, "out_of_scope": 1, "redirect_loop": 1, "robots": 2}
    again = reference_crawl([site.url + "/"], max_depth=3)
    assert (again.pages_ok, again.pages_failed, again.other_ok, again.images, again.depth) == (
        result.pages_ok,
        result.pages_failed,
        result.other_ok,
        result.images,
        result.depth,
    )


def test_reference_crawl_of_the_whole_site_to_depth_6(site: DemoSite, crawl6: ReferenceResult) -> None:
    """Depth 6 reaches all 300 pages; only the calendar trap is cut."""
    url, result = site.url, crawl6
    assert (len(result.pages_ok), len(result.other_ok), len(result.pages_failed), len(result.images)) == (
        314,
        22,
        33,
        144,
    )
    assert result.failures() == {"http_404": 20, "http_500": 1, "out_of_scope": 1, "redirect_loop": 1, "robots": 10}
    pages = {f"{url}/page/{n}.html" for n in range(300)}
    extra = {f"{url}{p}" for p in ["/", "/go/1", "/slow.html", "/docs/index.html", "/page/1.html?view=print&lang=en"]}
    calendar = {u for u in result.pages_ok if "/calendar/" in u}
    assert result.pages_ok == pages | extra | calendar
    assert f"{url}/files/report.pdf" in result.other_ok
    assert {u for u in result.other_ok if "/img/" not in u} == {f"{url}/files/report.pdf"}
    assert result.pages_failed[f"{url}/loop/a"] == "redirect_loop"
    assert result.pages_failed[f"{url}/error.html"] == "http_500"
    assert result.pages_failed[f"{url}/go/away"] == "out_of_scope"
    assert result.pages_failed[f"{url}/page/"] == "http_404"  # "#top" on the docs page, resolved against <base>
    assert f"{url}/img/999.png" in result.images
    assert not any("example.invalid" in u or "lost-and-found" in u for u in [*result.depth, *result.images])
    assert all(u.startswith(url + "/") for u in [*result.depth, *result.images])


def test_reference_crawl_without_robots_reaches_the_private_pages(site: DemoSite, crawl6: ReferenceResult) -> None:
    result = reference_crawl([site.url + "/"], max_depth=6, obey_robots=False)
    assert {u for u in result.pages_ok - crawl6.pages_ok} == {f"{site.url}/private/{p}.html" for p in range(12)}
    assert "robots" not in result.failures()


def test_the_trap_is_bounded_by_the_limits(
    site: DemoSite, crawl3: tuple[ReferenceResult, Counter[str]], crawl6: ReferenceResult
) -> None:
    for depth, result in [(3, crawl3[0]), (6, crawl6)]:
        calendar = [u for u in result.depth if "/calendar/" in u]
        assert len(calendar) == 1 + 2 * (depth - 2)  # first linked at depth 2, then two new months per level
    result = reference_crawl([site.url + "/"], max_pages=40)
    assert result.admitted == len(result.depth) == 40


def test_the_crawl_hits_each_url_once(site: DemoSite, crawl3: tuple[ReferenceResult, Counter[str]]) -> None:
    result, hits = crawl3
    assert hits["/robots.txt"] == 1
    assert hits["/page/7.html"] == 2  # once as itself, once as the end of the /go/1 chain
    assert hits["/loop/a"] == hits["/loop/b"] == 1
    assert hits["/go/away"] == 1
    fetched = {u.removeprefix(site.url) for u in result.depth if result.pages_failed.get(u) != "robots"}
    assert set(hits) - fetched == {"/robots.txt", "/go/2", "/go/3", "/loop/b"}  # redirect hops
    assert all(count == 1 for path, count in hits.items() if path != "/page/7.html")


# -- `pipeline demo-site` -----------------------------------------------------------------------------------------

# The command as the console script runs it, registered here too in case main.py does not list it yet.
_CLI = (
    "from pipeline.cli.main import cli, main\n"
    "from pipeline.cli.demo_site import demo_site\n"
    "cli.commands.setdefault('demo-site', demo_site)\n"
    "main()\n"
)


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _cli_process(*args: str, sigint_ignored: bool = False) -> subprocess.Popen[str]:
    """``sigint_ignored``: started the way a non-interactive shell starts a background job."""
    return subprocess.Popen(
        [sys.executable, "-c", _CLI, "demo-site", *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        preexec_fn=_ignore_sigint if sigint_ignored else None,
    )


def _first_line(process: subprocess.Popen[str], timeout: float = 20) -> str:
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            process.kill()
            pytest.fail(f"no output within {timeout}s")
    return process.stdout.readline()


def test_demo_site_stops_on_sigint_even_when_started_with_sigint_ignored() -> None:
    process = _cli_process("--pages", "20", sigint_ignored=True)
    try:
        _first_line(process)
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_demo_site_command_prints_the_url_serves_and_stops(stop_signal: signal.Signals) -> None:
    process = _cli_process("--pages", "40", "--seed", "3")
    try:
        url = _first_line(process).strip()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/", url)
        port = int(url.rsplit(":", 1)[1].rstrip("/"))
        # Another process (another PYTHONHASHSEED, no shared caches) serves the very same bytes.
        with DemoSite(pages=40, seed=3) as here:
            for path in ["/", "/page/39.html", "/page/7.html", "/img/5.png", "/img/6.webp", "/img/7.gif"]:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                conn.request("GET", path, headers={"Host": "demo.test"})
                response = conn.getresponse()
                assert response.status == 200
                assert response.read() == get(here, path, host="demo.test")[2], path
                conn.close()
        process.send_signal(stop_signal)
        out, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0
    assert out == ""  # the URL was the only line
    assert err.strip() == f"serving {url} (40 pages) - Ctrl-C to stop"
