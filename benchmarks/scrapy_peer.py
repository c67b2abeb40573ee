"""The peer: Scrapy crawling the demo site the way the raw aiohttp crawler does.

Run in its own process (``python -m benchmarks.scrapy_peer URL``) because
Twisted's reactor can start only once per process; it prints one JSON line,
``{"pages": N, "wall_s": S}``. Settings are the comparable ones: 64 requests in
flight (64 per domain too), no download delay, no AutoThrottle, no robots.txt,
no cookies, breadth-first order (Scrapy's documented BFO settings: FIFO queues,
``DEPTH_PRIORITY=1``), and the raw crawler's scope and depth: ``<a href>`` links
on the seed's host and port, fragments dropped, ``DEPTH_LIMIT`` = max depth.
Everything else is Scrapy's default (its retry of 5xx and connection errors,
its redirects), as a user would run it.

A page is a URL that got an answer or a final error: the spider handles every
status (``handle_httpstatus_all``), so 404s and 500s reach the callback and
count, and connection errors reach the errback. The wall time runs from the
spider opening to its closing, leaving out Scrapy's import and start-up.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urldefrag, urljoin, urlsplit

import scrapy
from scrapy import signals
from scrapy.crawler import CrawlerProcess
from scrapy.http import HtmlResponse, Response

SETTINGS = {
    "CONCURRENT_REQUESTS": 64,
    "CONCURRENT_REQUESTS_PER_DOMAIN": 64,
    "DOWNLOAD_DELAY": 0,
    "AUTOTHROTTLE_ENABLED": False,
    "ROBOTSTXT_OBEY": False,
    "COOKIES_ENABLED": False,
    "DOWNLOAD_TIMEOUT": 10,  # the raw crawler's per-request timeout
    "DEPTH_PRIORITY": 1,  # breadth-first, like the raw crawler
    "SCHEDULER_DISK_QUEUE": "scrapy.squeues.PickleFifoDiskQueue",
    "SCHEDULER_MEMORY_QUEUE": "scrapy.squeues.FifoMemoryQueue",
    "TELNETCONSOLE_ENABLED": False,
    "LOG_LEVEL": "WARNING",
}


class DemoSpider(scrapy.Spider):
    name = "demo"
    custom_settings: dict[str, Any] = {}

    def __init__(self, seed: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.seed, self.netloc = seed, urlsplit(seed).netloc
        self.pages, self.opened, self.closed = 0, 0.0, 0.0

    @classmethod
    def from_crawler(cls, crawler: Any, *args: Any, **kwargs: Any) -> DemoSpider:
        spider: DemoSpider = super().from_crawler(crawler, *args, **kwargs)
        crawler.signals.connect(spider._on_open, signal=signals.spider_opened)
        crawler.signals.connect(spider._on_close, signal=signals.spider_closed)
        return spider

    def _on_open(self, spider: scrapy.Spider) -> None:
        self.opened = time.perf_counter()

    def _on_close(self, spider: scrapy.Spider) -> None:
        self.closed = time.perf_counter()

    async def start(self) -> AsyncIterator[scrapy.Request]:
        yield self._request(self.seed)

    def _request(self, url: str) -> scrapy.Request:
        return scrapy.Request(url, callback=self.parse, errback=self.failed, meta={"handle_httpstatus_all": True})

    def parse(self, response: Response) -> Iterator[scrapy.Request]:
        self.pages += 1
        if response.status != 200 or not isinstance(response, HtmlResponse):
            return
        for href in response.xpath("//a/@href").getall():
            link = urldefrag(urljoin(response.url, href))[0]
            if urlsplit(link).netloc == self.netloc:
                yield self._request(link)  # the dupe filter keeps each URL once; DEPTH_LIMIT the depth

    def failed(self, failure: Any) -> None:
        self.pages += 1


def crawl(seed: str, max_depth: int, concurrency: int) -> dict[str, Any]:
    settings = {**SETTINGS, "DEPTH_LIMIT": max_depth, "CONCURRENT_REQUESTS": concurrency,
                "CONCURRENT_REQUESTS_PER_DOMAIN": concurrency}  # fmt: skip
    process = CrawlerProcess(settings)
    crawler = process.create_crawler(DemoSpider)
    process.crawl(crawler, seed=seed)
    process.start()
    spider: DemoSpider = crawler.spider
    return {"pages": spider.pages, "wall_s": round(spider.closed - spider.opened, 3), "scrapy": scrapy.__version__}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scrapy_peer", description=__doc__.split("\n\n")[0])
    parser.add_argument("seed")
    parser.add_argument("--max-depth", type=int, default=8)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args(argv)
    print(json.dumps(crawl(args.seed, args.max_depth, args.concurrency)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
