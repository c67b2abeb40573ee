"""Workers fetch through the proxy HTTP_PROXY names (loopback and NO_PROXY hosts directly), and say so when it fails.

Each test has a Redis and a worker of its own: the session's worker, which has
no proxy, must not take these jobs. The demo site is reached by a name no DNS
resolves (``demo.test``): only the proxy knows where it is, so a request that
went direct would fail as ``dns_error``.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from pipeline.cli import exits
from pipeline.cluster import WorkerProcess, start_worker, wait_ready
from pipeline.config import Settings
from pipeline.core.aggregate import ItemResult
from pipeline.demo.site import DemoSite
from pipeline.kinds.crawl import CrawlSpec
from pipeline.ledger import Ledger
from pipeline.ledger.connection import connect
from pipeline.localredis import start_redis
from pipeline.producer import Producer
from tests.forward_proxy import ForwardProxy, TunnelProxy
from tests.helpers import wait_for_job
from tests.integration.test_cli import describe, run_cli, stderr_lines
from tests.threaded_site import ThreadedSite

SITE_NAME = "demo.test"


@pytest.fixture(scope="module")
def site() -> Iterator[DemoSite]:
    with DemoSite(pages=30, slow_s=0.0) as demo:
        yield demo


@pytest.fixture(scope="module")
def proxy(site: DemoSite) -> Iterator[ForwardProxy]:
    with ForwardProxy(site.url) as forward:
        yield forward


class ProxiedCluster:
    """A private Redis, one worker started with ``env`` (the proxy variables), a producer and a ledger."""

    def __init__(self, folder: Path, env: dict[str, str]) -> None:
        self.redis = start_redis(folder / "redis", appendonly=False)
        self.worker: WorkerProcess | None = None
        try:
            self.worker = start_worker(self.redis.url, f"proxied-{id(self)}@{socket.gethostname()}",
                                       env={"PIPELINE_HOME": str(folder / "home"), **env},
                                       log_path=folder / "worker.log")  # fmt: skip
            self.ledger = Ledger(connect(self.redis.url))
            wait_ready(self.ledger, [self.worker])
            self.producer = Producer(Settings.load(redis_url=self.redis.url, home=folder / "home"), self.redis.url)
        except BaseException:
            self.close()
            raise

    def crawl(self, seed: str) -> dict[str, object]:
        return self.crawl_with_failures(seed)[0]

    def crawl_with_failures(self, seed: str) -> tuple[dict[str, Any], list[ItemResult]]:
        job_id = self.producer.submit(CrawlSpec(seeds=[seed], max_depth=2, robots=False))
        return wait_for_job(self.ledger, job_id), list(self.ledger.results(job_id, failed_only=True))

    def close(self) -> None:
        if self.worker is not None:
            self.worker.terminate()
            if not self.worker.wait(30):
                self.worker.kill()
        self.redis.stop()


def crawl_once(folder: Path, env: dict[str, str], seed: str) -> tuple[dict[str, Any], list[ItemResult]]:
    """A cluster of its own with ``env``, one crawl of ``seed``: its document and failures (the cluster is stopped)."""
    cluster = ProxiedCluster(folder, env)
    try:
        return cluster.crawl_with_failures(seed)
    finally:
        cluster.close()


@pytest.fixture
def proxied(tmp_path: Path, proxy: ForwardProxy) -> Iterator[ProxiedCluster]:
    # By a name pinned to loopback (tests/helpers.py): the SSRF guard lets the proxy's own name through
    # only for the requests that go through it.
    with_password = proxy.url.replace("http://127.0.0.1:", "http://crawler:s3cret@public.test:")
    cluster = ProxiedCluster(tmp_path, {"HTTP_PROXY": with_password, "NO_PROXY": "direct.test"})
    yield cluster
    cluster.close()


def proxied_pages(proxy: ForwardProxy, host: str) -> int:
    return sum(n for key, n in proxy.hits.items() if key.startswith(host + "/"))


def test_a_crawl_reaches_through_the_proxy_a_site_only_the_proxy_can_resolve(
    proxied: ProxiedCluster, proxy: ForwardProxy, site: DemoSite
) -> None:
    before = proxied_pages(proxy, SITE_NAME)
    through = proxied.crawl(f"http://{SITE_NAME}/")
    direct = proxied.crawl(site.url + "/")  # loopback: never through a proxy
    fetched = through["pages"]["ok"] + through["pages"]["failed"] + through["pages"]["non_html"]  # type: ignore[index]
    assert through["pages"]["ok"] == direct["pages"]["ok"] > 10, (through, direct)  # type: ignore[index]
    assert "dns_error" not in through["failures"] and "proxy_error" not in through["failures"]  # type: ignore[operator]
    # Every page, and every hop of a redirect and every retry of a 500, went through the proxy.
    assert proxied_pages(proxy, SITE_NAME) - before >= fetched
    (record,) = proxied.ledger.workers()  # what `pipeline workers --json` shows: the proxy, not its password
    assert record["egress"].startswith(f"http:// through http://public.test:{proxy.port}")
    assert "s3cret" not in json.dumps(record)
    assert proxy.credentials == {"Basic " + base64.b64encode(b"crawler:s3cret").decode()}


def test_loopback_addresses_are_fetched_directly_with_a_proxy_set(
    proxied: ProxiedCluster, proxy: ForwardProxy, site: DemoSite
) -> None:
    before = sum(proxy.hits.values())
    doc = proxied.crawl(site.url + "/")
    assert doc["pages"]["ok"] > 10  # type: ignore[index]
    assert sum(proxy.hits.values()) == before, "a loopback request went to the proxy"


def test_a_no_proxy_host_is_fetched_directly(proxied: ProxiedCluster, proxy: ForwardProxy) -> None:
    before = sum(proxy.hits.values())
    doc = proxied.crawl("http://direct.test/")  # in NO_PROXY, and no DNS knows it
    assert doc["failures"] == {"dns_error": 1}, doc["failures"]
    assert sum(proxy.hits.values()) == before


def test_a_proxy_that_cannot_be_reached_fails_the_page_with_proxy_error_naming_it_without_its_password(
    tmp_path: Path,
) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # bound but not listening: connections are refused
        env = {"HTTP_PROXY": f"http://crawler:s3cret@127.0.0.1:{port}"}
        doc, failures = crawl_once(tmp_path, env, f"http://{SITE_NAME}/")
    assert doc["state"] != "running" and doc["failures"] == {"proxy_error": 1}, doc
    assert f"127.0.0.1:{port}" in (failures[0].detail or "") and "s3cret" not in (failures[0].detail or "")


def test_a_proxy_asking_for_credentials_fails_the_page_saying_where_they_go(tmp_path: Path, site: DemoSite) -> None:
    with ForwardProxy(site.url, require="Basic " + base64.b64encode(b"crawler:s3cret").decode()) as strict:
        doc, failures = crawl_once(tmp_path, {"HTTP_PROXY": strict.url}, f"http://{SITE_NAME}/")
    assert doc["failures"] == {"proxy_error": 1}, doc
    assert "wants valid credentials (HTTP 407)" in failures[0].detail and "http://user:password@" in failures[0].detail


class SecureSite(ThreadedSite):
    """Three HTML pages over TLS for ``secure.test`` (a self-signed certificate): / links to /a and /b."""

    def _routes(self, app: web.Application) -> None:
        def page(links: str) -> web.Response:
            return web.Response(text=f"<html><body>{links}</body></html>", content_type="text/html")

        async def home(request: web.Request) -> web.Response:
            return page('<a href="https://secure.test/a">a</a> <a href="/b">b</a>')

        async def leaf(request: web.Request) -> web.Response:
            return page("<p>leaf</p>")

        app.router.add_get("/", home)
        app.router.add_get("/{name:[ab]}", leaf)


def self_signed(folder: Path, name: str) -> tuple[Path, Path]:
    """A certificate for ``name`` and its key, made by the openssl command line (no Python package needed)."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "2", "-subj", f"/CN={name}", "-addext", f"subjectAltName=DNS:{name}"],
                   check=True, capture_output=True)  # fmt: skip
    return cert, key


def test_https_goes_through_the_proxy_s_tunnel_with_the_site_s_certificate_checked(tmp_path: Path) -> None:
    """SSL_CERT_FILE is how a worker trusts a private CA (here the test's own certificate): OpenSSL reads it."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command makes this test's certificate: apt-get install openssl")
    cert, key = self_signed(tmp_path, "secure.test")
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    with SecureSite(tls=tls) as secure, TunnelProxy(secure.port) as tunnel:
        env = {"HTTPS_PROXY": tunnel.url, "SSL_CERT_FILE": str(cert)}
        doc, _ = crawl_once(tmp_path / "trusting", env, "https://secure.test/")
        assert doc["pages"]["ok"] == 3 and not doc["failures"], doc
        assert tunnel.tunnels["secure.test:443"] >= 1
        # Without the certificate the tunnel opens, and the TLS check refuses the site.
        doc, _ = crawl_once(tmp_path / "doubting", {"HTTPS_PROXY": tunnel.url}, "https://secure.test/")
        assert doc["pages"]["ok"] == 0 and doc["failures"] == {"tls_error": 1}, doc


def test_a_tunnel_the_proxy_refuses_fails_the_page_at_once_without_retries(tmp_path: Path) -> None:
    with TunnelProxy(upstream_port=9, refuse=403) as refusing:
        doc, failures = crawl_once(tmp_path, {"HTTPS_PROXY": refusing.url}, "https://secure.test/")
    assert doc["failures"] == {"proxy_error": 1}, doc
    assert "answered HTTP 403 to the tunnel request" in failures[0].detail
    assert refusing.tunnels == {"secure.test:443": 1}, "a refused tunnel was asked for again"


def test_a_proxy_whose_name_does_not_resolve_is_a_proxy_error_not_the_sites(tmp_path: Path) -> None:
    doc, failures = crawl_once(tmp_path, {"HTTP_PROXY": "http://proxy.invalid:3128"}, f"http://{SITE_NAME}/")
    assert doc["failures"] == {"proxy_error": 1}, doc
    assert "cannot resolve the proxy http://proxy.invalid:3128" in failures[0].detail


def test_a_worker_with_an_unusable_proxy_variable_stops_at_start_and_names_it(tmp_path: Path) -> None:
    server = start_redis(tmp_path / "redis", appendonly=False)
    log = tmp_path / "worker.log"
    worker = start_worker(server.url, f"badproxy@{socket.gethostname()}", log_path=log,
                          env={"HTTP_PROXY": "socks5://crawler:s3cret@127.0.0.1:1080",
                               "PIPELINE_HOME": str(tmp_path / "home")})  # fmt: skip
    try:
        assert worker.wait(60), "the worker kept running with a proxy it cannot use"
    finally:
        if worker.alive():
            worker.kill()
        server.stop()
    text = log.read_text()
    assert "PIPELINE_HTTP_PROXY (or HTTP_PROXY)" in text and "s3cret" not in text


def test_pipeline_worker_refuses_an_unusable_proxy_in_one_line_before_starting_celery(redis_url: str) -> None:
    env = {**os.environ, "PIPELINE_REDIS_URL": redis_url, "HTTPS_PROXY": "socks5://crawler:s3cret@127.0.0.1:1080"}
    done = run_cli("worker", env=env)
    assert done.returncode == exits.UNAVAILABLE, describe(done)
    assert stderr_lines(done) == [
        "error: invalid configuration: PIPELINE_HTTPS_PROXY (or HTTPS_PROXY): must be a proxy URL like "
        "http://proxy.example:3128 (http or https; got socks5://127.0.0.1)"
    ], describe(done)


def test_other_commands_are_not_stopped_by_a_proxy_variable_set_for_other_tools(redis_url: str) -> None:
    env = {**os.environ, "PIPELINE_REDIS_URL": redis_url, "HTTP_PROXY": "socks5://127.0.0.1:1080"}
    done = run_cli("jobs", "--json", env=env)
    assert done.returncode == exits.OK, describe(done)
