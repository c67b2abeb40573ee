"""Crawl throughput: pipeline vs a raw aiohttp breadth-first crawler and vs Scrapy, same site, same run.

The demo site runs in its own process (``python -m benchmarks.crawl --serve``)
so no crawler shares a GIL with the server. The raw crawler is what the
pipeline must be measured against: one aiohttp session, 64 requests in
flight, links extracted with lxml, the same scope (the seed's host) and the
same depth limit, no robots.txt, no politeness, no Redis. The peer is Scrapy
with the same limits (``benchmarks/scrapy_peer.py``, in its own process). All
crawl the whole site to ``--max-depth``; pages/s is pages fetched over wall
time, the median of runs alternating raw / pipeline / pipeline with images /
Scrapy. The crawlers normalise URLs differently (the pipeline lowercases
``HTTP://`` and drops default ports, the raw crawler compares strings), so
their page counts may differ by a few; more than 1 % apart is flagged as a
failed sanity check.

Three sites: the demo site as users get it, whose slow page (1.5 s) bounds
every crawler's wall time, so the ratio says how well a crawler hides one slow
page behind the rest of the work; ``throughput``, the same site with the
slow page answering at once, where the ratio is pages per second sustained on
1.3 KB pages (per-page overhead at its most visible); and ``realistic``, the
same pages wrapped as real sites write them (~23 KB: inline CSS and JS, a menu
and a footer of ~60 site-wide links, more text), where parsing weighs as it
does on the web.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import signal
import statistics
import subprocess
import sys
import time
from collections import deque
from typing import Any
from urllib.parse import urldefrag, urljoin, urlsplit

import aiohttp
import lxml.html

from benchmarks.harness import Cluster
from pipeline.core.document import FINAL_STATES
from pipeline.demo.site import DemoSite
from pipeline.kinds import job_document
from pipeline.kinds.crawl import CrawlSpec
from pipeline.ledger.keys import job_key

MAX_DEPTH = 8
CONCURRENCY = 64
SCRAPY_TARGET = 10.0  # pipeline pages/s over Scrapy's
PAGES_TOLERANCE = 0.01  # how far apart the crawlers' page counts may be
DEMO_SLOW_S: float = inspect.signature(DemoSite).parameters["slow_s"].default  # the site's slow page, as users get it


class SiteProcess:
    """The demo site in a child process (``python -m benchmarks.crawl --serve``); its URL is the first line."""

    def __init__(self, pages: int, slow_s: float = DEMO_SLOW_S, chrome: bool = False) -> None:
        command = [sys.executable, "-m", "benchmarks.crawl", "--serve", str(pages), str(slow_s), str(int(chrome))]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert self.process.stdout is not None
        self.url = self.process.stdout.readline().strip().rstrip("/")
        if not self.url:
            self.close()
            raise RuntimeError(f"the demo site did not start: {command}")

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def _serve(pages: int, slow_s: float, chrome: bool) -> None:
    stop = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop)  # before the server thread exists: it inherits the mask
    site = DemoSite(pages=pages, slow_s=slow_s, chrome=chrome)
    site.start()
    print(site.url + "/", flush=True)
    signal.sigwait(stop)
    site.stop()


async def raw_crawl(seed: str, max_depth: int = MAX_DEPTH) -> int:
    """A plain BFS: fetch, extract <a href>, same host, each URL once. Returns pages fetched."""
    host = urlsplit(seed).netloc
    seen = {seed}
    frontier: deque[tuple[str, int]] = deque([(seed, 0)])
    fetched = 0
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(url: str, depth: int) -> None:
            nonlocal fetched
            try:
                async with session.get(url, timeout=aiohttp.ClientTimeout(total=10)) as response:
                    body = await response.read()
                    fetched += 1
                    if response.status != 200 or response.content_type != "text/html" or depth >= max_depth:
                        return
                    base = str(response.url)
            except (aiohttp.ClientError, TimeoutError):
                fetched += 1
                return
            for href in lxml.html.document_fromstring(body).xpath("//a/@href") if body.strip() else []:
                link = urldefrag(urljoin(base, str(href)))[0]
                if urlsplit(link).netloc == host and link not in seen:
                    seen.add(link)
                    frontier.append((link, depth + 1))

        running: set[asyncio.Task[None]] = set()
        while frontier or running:
            while frontier and len(running) < CONCURRENCY:
                url, depth = frontier.popleft()
                running.add(asyncio.create_task(one(url, depth)))
            _, running = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
    return fetched


def scrapy_crawl(seed: str, max_depth: int = MAX_DEPTH) -> dict[str, Any] | None:
    """Scrapy in a child process (Twisted's reactor starts once per process); None if it is not installed."""
    command = [sys.executable, "-m", "benchmarks.scrapy_peer", seed, "--max-depth", str(max_depth),
               "--concurrency", str(CONCURRENCY)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0:
        if "No module named 'scrapy'" in done.stderr:
            return None
        raise RuntimeError(f"the Scrapy peer failed ({done.returncode}): {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def pipeline_crawl(cluster: Cluster, seed: str, images: bool) -> dict[str, Any]:
    assert cluster.producer is not None and cluster.ledger is not None
    request = CrawlSpec(seeds=[seed], max_depth=MAX_DEPTH, images=images, robots=False, concurrency=CONCURRENCY,
                        per_host=CONCURRENCY, allow_private=True)  # fmt: skip
    started = time.perf_counter()
    job_id = cluster.producer.submit(request)
    # One field per poll (like the image benchmark): the whole document every 10 ms
    # cost ~80 us of CPU per page here, taken from the cores the crawl runs on.
    while cluster.ledger.client.hget(job_key(job_id), "state") not in FINAL_STATES:
        time.sleep(0.01)
    wall = time.perf_counter() - started
    cluster.wait_finalized(job_id)  # its report is written after: that must not overlap the next crawler's run
    doc = job_document(cluster.ledger, job_id)
    pages = doc["pages"]
    fetched = pages["ok"] + pages["failed"] + pages["non_html"]
    return {"wall_s": round(wall, 3), "pages": fetched, "images": doc["images"], "state": doc["state"]}


def _sanity(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Every crawler must have fetched (about) the same pages, or the ratios compare different work."""
    counts = {name: sorted({r[name]["pages"] for r in runs if r.get(name)}) for name in runs[0] if runs[0][name]}
    flat = [n for values in counts.values() for n in values]
    return {"pages": counts, "ok": max(flat) <= min(flat) * (1 + PAGES_TOLERANCE)}


def compare(
    cluster: Cluster, repeat: int, pages: int, slow_s: float, images: bool, chrome: bool = False
) -> dict[str, Any]:
    """Every crawler on one site, alternating, ``repeat`` rounds; medians of pages/s and their ratios."""
    site = SiteProcess(pages, slow_s, chrome)
    try:
        seed = site.url + "/"
        asyncio.run(raw_crawl(seed))  # warm every side up once
        pipeline_crawl(cluster, seed, images=False)
        has_scrapy = scrapy_crawl(seed) is not None
        rates: dict[str, list[float]] = {"raw": [], "pipeline": [], "pipeline_images": [], "scrapy": []}
        runs = []
        for _ in range(repeat):
            started = time.perf_counter()
            raw_pages = asyncio.run(raw_crawl(seed))
            one: dict[str, Any] = {"raw": {"pages": raw_pages, "wall_s": round(time.perf_counter() - started, 3)}}
            one["pipeline"] = pipeline_crawl(cluster, seed, images=False)
            one["pipeline_images"] = pipeline_crawl(cluster, seed, images=True) if images else None
            one["scrapy"] = scrapy_crawl(seed) if has_scrapy else None
            for name, result in one.items():
                if result is not None:
                    rates[name].append(result["pages"] / result["wall_s"])
            runs.append(one)
    finally:
        site.close()
    raw, pipe_rate = statistics.median(rates["raw"]), statistics.median(rates["pipeline"])
    image_rate = statistics.median(rates["pipeline_images"]) if images else None
    scrapy = statistics.median(rates["scrapy"]) if rates["scrapy"] else None
    return {
        "site_pages": pages, "slow_page_s": slow_s, "page_chrome": chrome, "max_depth": MAX_DEPTH,
        "concurrency": CONCURRENCY,
        "raw_pages_per_s": round(raw, 1), "pipeline_pages_per_s": round(pipe_rate, 1),
        "pipeline_with_images_pages_per_s": round(image_rate, 1) if image_rate else None,
        "ratio": round(pipe_rate / raw, 3), "ratio_with_images": round(image_rate / raw, 3) if image_rate else None,
        "target": 0.8,
        "scrapy_pages_per_s": round(scrapy, 1) if scrapy else None,
        "ratio_vs_scrapy": round(pipe_rate / scrapy, 2) if scrapy else None,
        "raw_vs_scrapy": round(raw / scrapy, 2) if scrapy else None,
        "scrapy_target": SCRAPY_TARGET,
        "sanity": _sanity(runs), "runs": runs,
    }  # fmt: skip


def run(cluster: Cluster, repeat: int, pages: int = 1000) -> dict[str, Any]:
    """The demo site as it is (its slow page takes 1.5 s, which bounds every crawler's wall time), then
    the same site with the slow page answering at once (``throughput``: what each crawler can sustain)."""
    result = compare(cluster, repeat, pages, DEMO_SLOW_S, images=True)
    result["throughput"] = compare(cluster, repeat, pages, 0.0, images=False)
    result["realistic"] = compare(cluster, repeat, pages, 0.0, images=False, chrome=True)
    return result


if __name__ == "__main__" and sys.argv[1:2] == ["--serve"]:
    _serve(int(sys.argv[2]), float(sys.argv[3]), sys.argv[4] == "1")
