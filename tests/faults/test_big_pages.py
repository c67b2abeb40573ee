"""A big page linked many times: the worker's memory stays bounded, and is given back after.

24 links to a 30 MB page once took a worker's main process to 1.27 GB (712 MB still
held after) and a pool child to 810 MB: every body was capped, but nothing capped
them together. Here 24 links to an 8 MB page, a body budget of two such pages, and
parsing cut at 1 MB: the worker's peak stays far below what 24 bodies in flight
would take, and its memory goes back down once the pages are recorded.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.kinds.crawl import CrawlSpec
from tests.faults.conftest import FaultCluster
from tests.helpers import wait_for_job
from tests.link_site import LinkSite

PAGE_BYTES = 8 * 2**20
LINKS = 24
MiB = 2**20


def _status(pid: int, field: str) -> int:
    """VmHWM / VmRSS of a process, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} for pid {pid}")


@pytest.fixture(scope="module")
def big_site() -> Iterator[LinkSite]:
    words = b"<p>" + b"river stone harbor lantern " * 1000 + b"</p>\n"
    big = b"<html><body>" + words * (PAGE_BYTES // len(words)) + b"</body></html>"
    links = " ".join(f'<a href="/big?copy={n}">copy {n}</a>' for n in range(LINKS))
    pages = {"/": ("text/html", f"<html><body>{links}</body></html>".encode()), "/big": ("text/html", big)}
    with LinkSite(pages) as site:
        yield site


def test_a_big_page_linked_many_times_keeps_the_workers_memory_bounded_and_gives_it_back(
    cluster: FaultCluster, big_site: LinkSite
) -> None:
    worker = cluster.start("big@test", PIPELINE_MAX_BODY_BYTES=str(9 * MiB), PIPELINE_FETCH_MEMORY_BYTES=str(18 * MiB),
                           PIPELINE_MAX_PARSE_BYTES=str(MiB), PIPELINE_FETCH_TIMEOUT_S="20",
                           PIPELINE_TASK_DEADLINE_S="60", PIPELINE_VISIBILITY_TIMEOUT_S="90")  # fmt: skip
    warm_up = CrawlSpec(seeds=[big_site.url + "/"], max_pages=1, output_dir=cluster.tmp_path / "warm-up")
    wait_for_job(cluster.ledger, cluster.producer.submit(warm_up), timeout=60)  # lazy imports, connections
    before = _status(worker.pid, "VmRSS")
    request = CrawlSpec(seeds=[big_site.url + "/"], concurrency=LINKS, per_host=LINKS, output_dir=cluster.tmp_path)
    doc = wait_for_job(cluster.ledger, cluster.producer.submit(request), timeout=120)
    assert doc["pages"]["ok"] == 1 + LINKS and doc["failures"] == {}
    results = [r for r in cluster.ledger.results(doc["job_id"]) if "/big" in r.source]
    assert all(r.meta.get("parsed_bytes") == MiB for r in results), "the parse is cut at PIPELINE_MAX_PARSE_BYTES"
    assert big_site.hits["/big"] == LINKS
    peak = _status(worker.pid, "VmHWM") - before
    # 24 bodies in flight would be 192 MB before any copy; two slots hold 16 MB (a few copies each).
    # Measured: 56-63 MiB peak and 20-23 MiB after with the budget; 292 and 78 without.
    assert peak < 120 * MiB, f"worker main grew by {peak / MiB:.0f} MiB at peak"
    after = _status(worker.pid, "VmRSS") - before
    assert after < 40 * MiB, f"worker main still holds {after / MiB:.0f} MiB more than before the crawl"
