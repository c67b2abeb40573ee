"""The scrape peer: Scrapy scraping the demo shop with the same selectors and feed as the pipeline's scrape.

``python -m benchmarks.scrapy_scrape SEED FEED`` prints one JSON line,
``{"pages": N, "items": M, "wall_s": S}``. The spider is the crawl peer's
(``benchmarks.scrapy_peer``: same settings, every same-host ``<a href>``
followed breadth-first) and yields, per ``article.product-detail``, the
fields the pipeline benchmark's ``--field``s name, through the same parsel
selectors, into a JSON-lines feed (Scrapy's ``FEEDS``), as a Scrapy user
would write it.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from typing import Any
from urllib.parse import urldefrag, urljoin, urlsplit

import scrapy
from scrapy.crawler import CrawlerProcess
from scrapy.http import HtmlResponse, Response

from benchmarks.scrapy_peer import SETTINGS, DemoSpider


class ShopSpider(DemoSpider):
    name = "shop"

    def __init__(self, seed: str, **kwargs: Any) -> None:
        super().__init__(seed, **kwargs)
        self.items = 0

    def parse(self, response: Response) -> Iterator[Any]:
        self.pages += 1
        if response.status != 200 or not isinstance(response, HtmlResponse):
            return
        for product in response.css("article.product-detail"):
            price = product.css(".price::text").re_first(r"[\d,]+\.\d+")
            image = product.css("img::attr(src)").get()
            self.items += 1
            yield {
                "url": response.url,
                "sku": (product.css(".sku::text").get() or "").strip() or None,
                "name": (product.css("h1::text").get() or "").strip() or None,
                "price": float(price.replace(",", "")) if price else None,
                "tags": [tag.strip() for tag in product.css("ul.tags li::text").getall()],
                "date": product.xpath(".//time/@datetime").get(),
                "image": response.urljoin(image.strip()) if image else None,
            }
        for href in response.xpath("//a/@href").getall():
            link = urldefrag(urljoin(response.url, href))[0]
            if urlsplit(link).netloc == self.netloc:
                yield self._request(link)


def scrape(seed: str, feed: str, concurrency: int) -> dict[str, Any]:
    settings = {**SETTINGS, "DEPTH_LIMIT": 0, "CONCURRENT_REQUESTS": concurrency,
                "CONCURRENT_REQUESTS_PER_DOMAIN": concurrency, "FEEDS": {feed: {"format": "jsonlines"}}}  # fmt: skip
    process = CrawlerProcess(settings)
    crawler = process.create_crawler(ShopSpider)
    process.crawl(crawler, seed=seed)
    process.start()
    spider: ShopSpider = crawler.spider
    return {"pages": spider.pages, "items": spider.items, "wall_s": round(spider.closed - spider.opened, 3),
            "scrapy": scrapy.__version__}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scrapy_scrape", description=__doc__.split("\n\n")[0])
    parser.add_argument("seed")
    parser.add_argument("feed")
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args(argv)
    print(json.dumps(scrape(args.seed, args.feed, args.concurrency)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
