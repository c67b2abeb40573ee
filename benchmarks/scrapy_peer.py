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

``--images DIR`` adds what ``crawl --images --ops thumbnail:128`` does, the
way a Scrapy user does it: each page yields an item with its ``<img src>``
URLs on the seed's host, and Scrapy's own ``ImagesPipeline`` downloads each
URL once, stores it (as JPEG: it always keeps the "full" image) and a 128 px
thumbnail (``IMAGES_THUMBS``) under DIR. The JSON line then counts images too.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
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

    def __init__(self, seed: str, images: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.seed, self.netloc, self.images = seed, urlsplit(seed).netloc, images
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

    def parse(self, response: Response) -> Iterator[scrapy.Request | dict[str, Any]]:
        self.pages += 1
        if response.status != 200 or not isinstance(response, HtmlResponse):
            return
        if self.images:
            found = (urljoin(response.url, src) for src in response.xpath("//img/@src").getall())
            urls = list(dict.fromkeys(url for url in found if urlsplit(url).netloc == self.netloc))
            if urls:
                yield {"image_urls": urls}
        for href in response.xpath("//a/@href").getall():
            link = urldefrag(urljoin(response.url, href))[0]
            if urlsplit(link).netloc == self.netloc:
                yield self._request(link)  # the dupe filter keeps each URL once; DEPTH_LIMIT the depth

    def failed(self, failure: Any) -> None:
        self.pages += 1


def crawl(seed: str, max_depth: int, concurrency: int, images_dir: str | None = None) -> dict[str, Any]:
    settings = {**SETTINGS, "DEPTH_LIMIT": max_depth, "CONCURRENT_REQUESTS": concurrency,
                "CONCURRENT_REQUESTS_PER_DOMAIN": concurrency}  # fmt: skip
    if images_dir is not None:
        settings |= {"ITEM_PIPELINES": {"scrapy.pipelines.images.ImagesPipeline": 1}, "IMAGES_STORE": images_dir,
                     "IMAGES_THUMBS": {"small": (128, 128)}}  # fmt: skip
    process = CrawlerProcess(settings)
    crawler = process.create_crawler(DemoSpider)
    process.crawl(crawler, seed=seed, images=images_dir is not None)
    process.start()
    spider: DemoSpider = crawler.spider
    result = {"pages": spider.pages, "wall_s": round(spider.closed - spider.opened, 3), "scrapy": scrapy.__version__}
    if images_dir is not None:
        thumbs = Path(images_dir, "thumbs", "small")
        result["images"] = {"ok": sum(1 for _ in thumbs.glob("*")) if thumbs.is_dir() else 0}
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scrapy_peer", description=__doc__.split("\n\n")[0])
    parser.add_argument("seed")
    parser.add_argument("--max-depth", type=int, default=8)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--images", metavar="DIR", help="also store every image and its 128 px thumbnail in DIR")
    args = parser.parse_args(argv)
    print(json.dumps(crawl(args.seed, args.max_depth, args.concurrency, args.images)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
