"""Crawl properties that only show across processes and sockets.

Two workers share one frontier; politeness limits hold across the cluster;
the SSRF guard keeps a crawl away from an internal host; cancel stops fetching.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from pipeline.cluster import WorkerProcess, start_worker, wait_ready
from pipeline.demo.server import StaticServer
from pipeline.demo.site import DemoSite
from pipeline.kinds import job_document
from pipeline.kinds.crawl import CrawlSpec
from pipeline.ledger import Ledger
from pipeline.ledger.connection import connect
from pipeline.producer import Producer
from tests.helpers import image_bytes, wait_for_job, wait_until
from tests.slow_site import SlowSite

pytestmark = pytest.mark.usefixtures("worker")


@pytest.fixture(scope="module")
def second_worker(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerProcess]:
    logs = tmp_path_factory.mktemp("second-worker")
    worker = start_worker(redis_url, f"second-worker@{socket.gethostname()}", log_path=logs / "worker.log")
    client = connect(redis_url)
    try:
        wait_ready(Ledger(client), [worker])
    finally:
        client.close()
    yield worker
    worker.terminate()
    if not worker.wait(30):
        worker.kill()


@pytest.mark.usefixtures("second_worker")
def test_two_workers_share_one_frontier_and_fetch_no_page_twice(producer: Producer, ledger: Ledger) -> None:
    with DemoSite(pages=120) as site:
        request = CrawlSpec(seeds=[site.url + "/"], max_depth=8, batch_size=3)
        doc = wait_for_job(ledger, producer.submit(request))
        hits = site.hits
    pages = [path for path in hits if path.startswith("/page/")]
    assert len(pages) > 100
    # /page/7.html is also the end of a redirect chain (/go/1 -> ... -> /page/7.html): two requests, two URLs.
    assert all(hits[path] == 1 for path in pages if path != "/page/7.html"), {p: hits[p] for p in pages if hits[p] > 1}
    assert doc["ledger"]["duplicates"] == 0


@pytest.mark.usefixtures("second_worker")
def test_the_per_host_limit_holds_across_all_workers(producer: Producer, ledger: Ledger) -> None:
    with SlowSite(pages=40, delay_s=0.25) as site:
        request = CrawlSpec(seeds=[site.url + "/"], per_host=3, concurrency=16, batch_size=4)
        doc = wait_for_job(ledger, producer.submit(request))
        assert doc["pages"]["ok"] == 41
        assert site.max_in_flight == 3, "two workers x 4 threads x 4 pages could do far more than 3 at once"


def test_a_per_host_delay_spaces_request_starts(producer: Producer, ledger: Ledger) -> None:
    with SlowSite(pages=5, delay_s=0.0) as site:
        started = time.monotonic()
        doc = wait_for_job(ledger, producer.submit(CrawlSpec(seeds=[site.url + "/"], delay_s=0.3)))
        elapsed = time.monotonic() - started
    assert doc["pages"]["ok"] == 6
    assert elapsed >= 5 * 0.3, "six requests 0.3 s apart take at least 1.5 s"


@pytest.fixture
def internal(tmp_path: Path) -> Iterator[StaticServer]:
    """An "internal" server on 127.0.0.2 with one page, /secret.html, no crawl may reach."""
    (tmp_path / "internal").mkdir()
    (tmp_path / "internal" / "secret.html").write_text("<html>secret</html>")
    with StaticServer(tmp_path / "internal", host="127.0.0.2") as server:
        yield server


def test_links_to_an_internal_host_are_refused_and_it_receives_no_request(
    producer: Producer, ledger: Ledger, tmp_path: Path, internal: StaticServer
) -> None:
    port = internal.url.rsplit(":", 1)[1]
    hosts = ["127.0.0.2", "2130706434", "0x7f000002", "[::ffff:127.0.0.2]"]  # one host, four spellings
    spellings = [f"http://{host}:{port}/secret.html" for host in hosts]
    (tmp_path / "public").mkdir()
    links = "".join(f'<a href="{u}">x</a>' for u in spellings)
    (tmp_path / "public" / "index.html").write_text(f"<html><body>{links}</body></html>")
    with StaticServer(tmp_path / "public") as public:
        in_scope = [host.strip("[]") for host in hosts]
        request = CrawlSpec(seeds=[public.url_for("index.html")], allow_domains=in_scope)
        doc = wait_for_job(ledger, producer.submit(request))
        assert internal.hits == {}, "the internal host must not see a single request"
        assert doc["failures"] == {"ssrf_blocked": len(spellings)}
        allowed = CrawlSpec(seeds=[public.url_for("index.html")], allow_domains=["127.0.0.2"], allow_private=True)
        wait_for_job(ledger, producer.submit(allowed))
        assert internal.hits["/secret.html"] == 1, "with --allow-private the same link is fetched"


def test_names_resolving_to_loopback_are_refused_by_link_and_by_redirect(
    producer: Producer, ledger: Ledger, tmp_path: Path, internal: StaticServer
) -> None:
    """The workers run with PIPELINE_RESOLVE pinning internal.test to 127.0.0.2 (tests/helpers.py)."""
    port = internal.url.rsplit(":", 1)[1]
    by_name = f"http://internal.test:{port}/secret.html"
    targets = [by_name, f"http://127.0.0.2:{port}/secret.html", f"http://[::1]:{port}/secret.html"]
    (tmp_path / "public").mkdir()
    links = [by_name, "/redirect?to=" + quote(targets[0], safe=""), "/redirect?to=" + quote(targets[1], safe="")]
    links.append(targets[2])
    html = "".join(f'<a href="{link}">x</a>' for link in links)
    (tmp_path / "public" / "index.html").write_text(f"<html><body>{html}</body></html>")
    with StaticServer(tmp_path / "public") as public:
        # The seed is a pinned name too: the user typed it, so it is trusted wherever it points.
        seed = f"http://public.test:{public.port}/index.html"
        scope = ["internal.test", "127.0.0.2", "::1"]
        doc = wait_for_job(ledger, producer.submit(CrawlSpec(seeds=[seed], allow_domains=scope)))
        assert internal.hits == {}, "the internal host must not see a single request"
        assert public.hits["/index.html"] == 1
        assert doc["pages"]["ok"] == 1
        assert doc["failures"] == {"ssrf_blocked": 4}, doc["failures"]
        allowed = CrawlSpec(seeds=[seed], allow_domains=scope, allow_private=True)
        wait_for_job(ledger, producer.submit(allowed))
        assert internal.hits["/secret.html"] >= 1, "with --allow-private the pinned name is fetched"


def test_cancelling_a_crawl_stops_new_fetches_within_seconds(producer: Producer, ledger: Ledger) -> None:
    with SlowSite(pages=200, delay_s=0.5) as site:
        job_id = producer.submit(CrawlSpec(seeds=[site.url + "/"], per_host=4, concurrency=4, batch_size=2))
        wait_until(lambda: sum(site.hits.values()) >= 6, 30, "the crawl to be under way")
        assert producer.cancel(job_id)
        time.sleep(2.0)  # in-flight requests (0.5 s each) finish; no new ones may start
        settled = sum(site.hits.values())
        time.sleep(2.0)
        assert sum(site.hits.values()) == settled
    doc = job_document(ledger, job_id)
    assert doc["state"] == "cancelled"
    assert doc["pages"]["ok"] < 200


def test_a_crawl_reports_the_hosts_of_the_images_its_scope_left_out(
    producer: Producer, ledger: Ledger, tmp_path: Path
) -> None:
    """Not fetched, not resolved (``.invalid`` hosts): only counted, per reference, once per page."""
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "local.png").write_bytes(image_bytes((32, 32), "PNG"))
    cdn = '<img src="http://cdn.invalid/a.png"><img src="http://cdn.invalid/b.png">'
    (tmp_path / "site" / "index.html").write_text(
        f'<html><body>{cdn}<img src="http://static.other.invalid/c.png"><img src="local.png">'
        '<a href="two.html">two</a></body></html>'
    )
    (tmp_path / "site" / "two.html").write_text('<html><body><img src="http://cdn.invalid/a.png"></body></html>')
    with StaticServer(tmp_path / "site") as site:
        request = CrawlSpec(seeds=[site.url_for("index.html")], images=True, ops="grayscale",
                            output_dir=tmp_path / "out")  # fmt: skip
        doc = wait_for_job(ledger, producer.submit(request))
    assert doc["state"] == "succeeded", doc
    assert doc["images"]["ok"] == 1
    assert doc["off_site_images"] == [["cdn.invalid", 3], ["static.other.invalid", 1]]
