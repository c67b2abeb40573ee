"""Crawl throughput: pipeline vs a raw aiohttp breadth-first crawler, same site, same run.

The demo site runs in its own process (`pipeline demo-site`) so neither
crawler shares a GIL with the server. The raw crawler is what the pipeline
must be measured against: one aiohttp session, 64 requests in flight, links
extracted with lxml, the same scope (the seed's host) and the same depth
limit, no robots.txt, no politeness, no Redis. Both crawl the whole site to
``--max-depth``; pages/s is pages fetched over wall time, the median of runs
alternating raw/pipeline.
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import time
from collections import deque
from pathlib import Path
from typing import Any
from urllib.parse import urldefrag, urljoin, urlsplit

import aiohttp
import lxml.html

from benchmarks.harness import Cluster
from pipeline.producer import CrawlJobRequest

MAX_DEPTH = 8
CONCURRENCY = 64


class SiteProcess:
    """`pipeline demo-site` as a child process; its URL is the first line it prints."""

    def __init__(self, pages: int) -> None:
        command = [str(Path(sys.executable).parent / "pipeline"), "demo-site", "--pages", str(pages)]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert self.process.stdout is not None
        self.url = self.process.stdout.readline().strip().rstrip("/")

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(10)


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


def _pipeline_crawl(cluster: Cluster, seed: str, images: bool) -> dict[str, Any]:
    assert cluster.producer is not None and cluster.ledger is not None
    request = CrawlJobRequest([seed], max_depth=MAX_DEPTH, images=images, robots=False, concurrency=CONCURRENCY,
                              per_host=CONCURRENCY, allow_private=True)  # fmt: skip
    started = time.perf_counter()
    job_id = cluster.producer.submit_crawl(request)
    while (doc := cluster.ledger.document(job_id))["state"] not in ("succeeded", "failed", "cancelled"):
        time.sleep(0.01)
    wall = time.perf_counter() - started
    pages = doc["pages"]
    fetched = pages["ok"] + pages["failed"] + pages["non_html"]
    return {"wall_s": round(wall, 3), "pages": fetched, "images": doc["images"], "state": doc["state"]}


def run(cluster: Cluster, repeat: int, pages: int = 1000) -> dict[str, Any]:
    site = SiteProcess(pages)
    try:
        seed = site.url + "/"
        asyncio.run(raw_crawl(seed))  # warm both sides up once
        _pipeline_crawl(cluster, seed, images=False)
        raw_rates, pipe_rates, image_rates, runs = [], [], [], []
        for _ in range(repeat):
            started = time.perf_counter()
            raw_pages = asyncio.run(raw_crawl(seed))
            raw_wall = time.perf_counter() - started
            pipe = _pipeline_crawl(cluster, seed, images=False)
            with_images = _pipeline_crawl(cluster, seed, images=True)
            raw_rates.append(raw_pages / raw_wall)
            pipe_rates.append(pipe["pages"] / pipe["wall_s"])
            image_rates.append(with_images["pages"] / with_images["wall_s"])
            runs.append({"raw": {"pages": raw_pages, "wall_s": round(raw_wall, 3)}, "pipeline": pipe,
                         "pipeline_images": with_images})  # fmt: skip
        raw, pipe_rate, image_rate = (statistics.median(r) for r in (raw_rates, pipe_rates, image_rates))
        return {
            "site_pages": pages, "max_depth": MAX_DEPTH, "concurrency": CONCURRENCY,
            "raw_pages_per_s": round(raw, 1), "pipeline_pages_per_s": round(pipe_rate, 1),
            "pipeline_with_images_pages_per_s": round(image_rate, 1),
            "ratio": round(pipe_rate / raw, 3), "ratio_with_images": round(image_rate / raw, 3),
            "target": 0.8, "runs": runs,
        }  # fmt: skip
    finally:
        site.close()
