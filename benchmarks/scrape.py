"""``python -m benchmarks scrape``: a scrape of the demo shop vs a crawl of it, and vs Scrapy scraping it.

The shop (``pipeline.demo.shop``; the demo site in its own process, as in
``benchmarks.crawl``) with ``PRODUCTS`` product pages and their listings,
every in-scope link followed. Three runs alternating, medians of pages/s:

crawl     ``submit crawl`` of the shop (no robots.txt, 64 in flight, as the crawl benchmark)
scrape    ``submit scrape`` of the same pages with ``FIELDS`` inside ``article.product-detail``,
          feed ``.jsonl``; what extraction costs on top of crawling (target >= 0.8 of crawl)
scrapy    Scrapy with the same selectors, link following and a JSON-lines feed
          (``benchmarks.scrapy_scrape``; target: pipeline scrape >= 3x)

The pipeline's wall time runs from submit to the reduce step's report (for the
scrape, the feed merged and written); Scrapy's from spider open to close. Both
feeds must hold every product. The memory side (1,000,000 items) is
``python -m benchmarks scrape_memory``.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.crawl import CONCURRENCY, SiteProcess
from benchmarks.saving import run_and_save
from pipeline.kinds import job_document
from pipeline.kinds.crawl import CrawlSpec
from pipeline.kinds.scrape import ScrapeSpec
from pipeline.ledger.keys import job_key

PRODUCTS = 2000
ITEM = "css:article.product-detail"
FIELDS = (
    "sku=css:.sku::text",
    "name=css:h1::text",
    r"price=css:.price::text|re:[\d,]+\.\d+|float",
    "tags[]=css:ul.tags li::text",
    "date=xpath:.//time/@datetime",
    "image=css:img::attr(src)",
)
CRAWL_TARGET, SCRAPY_TARGET = 0.8, 3.0


def _pipeline(cluster: Any, spec: CrawlSpec) -> dict[str, Any]:
    started = time.perf_counter()
    job_id = cluster.producer.submit(spec)
    while not cluster.ledger.client.hget(job_key(job_id), "report"):
        time.sleep(0.01)
    wall = time.perf_counter() - started
    doc = job_document(cluster.ledger, job_id)
    pages = doc["pages"]["ok"] + doc["pages"]["failed"] + doc["pages"]["non_html"]
    out = {"wall_s": round(wall, 3), "pages": pages, "state": doc["state"]}
    if "scrape" in doc:
        out["items"] = doc["scrape"]["items"]
    return out


def _scrapy(seed: str, feed: Path) -> dict[str, Any] | None:
    command = [sys.executable, "-m", "benchmarks.scrapy_scrape", seed, str(feed), "--concurrency", str(CONCURRENCY)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
    if done.returncode != 0:
        if "No module named 'scrapy'" in done.stderr:
            return None
        raise RuntimeError(f"the Scrapy peer failed ({done.returncode}): {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["feed_lines"] = sum(1 for _ in feed.open(encoding="utf-8"))
    return result


def run(repeat: int, quick: bool, log: Any) -> dict[str, Any]:
    from benchmarks import data
    from benchmarks.harness import Cluster

    products = 400 if quick else PRODUCTS
    workdir = data.RESULTS / "tmp" / f"scrape-{os.getpid()}"
    out = workdir / "out"
    out.mkdir(parents=True, exist_ok=True)
    site = SiteProcess(products, 0.0)
    seed = site.url + "/shop/"
    common: dict[str, Any] = {"seeds": [seed], "robots": False, "concurrency": CONCURRENCY, "per_host": CONCURRENCY,
                              "allow_private": True, "max_pages": 100_000}  # fmt: skip
    crawl = CrawlSpec(**common, output_dir=out / "crawl", overwrite=True)
    scrape = ScrapeSpec(**common, item=ITEM, fields=FIELDS, feed=out / "feed.jsonl", output_dir=out / "scrape",
                        overwrite=True)  # fmt: skip
    rates: dict[str, list[float]] = {"crawl": [], "scrape": [], "scrapy": []}
    runs = []
    try:
        with Cluster(workdir / "cluster", processes=2, log_path=data.RESULTS / "worker-scrape.log") as cluster:
            _pipeline(cluster, crawl)  # warm up
            _pipeline(cluster, scrape)
            for round_ in range(repeat):
                one: dict[str, Any] = {"crawl": _pipeline(cluster, crawl), "scrape": _pipeline(cluster, scrape),
                                       "scrapy": _scrapy(seed, out / "scrapy.jsonl")}  # fmt: skip
                for name, result in one.items():
                    if result is not None:
                        rates[name].append(result["pages"] / result["wall_s"])
                runs.append(one)
                log(
                    f"scrape round {round_ + 1}: "
                    + ", ".join(f"{k} {v[-1]:.0f} pages/s" for k, v in rates.items() if v)
                )
    finally:
        site.close()
        shutil.rmtree(workdir, ignore_errors=True)
    crawl_rate, scrape_rate = statistics.median(rates["crawl"]), statistics.median(rates["scrape"])
    scrapy_rate = statistics.median(rates["scrapy"]) if rates["scrapy"] else None
    return {
        "products": products, "fields": list(FIELDS), "item": ITEM, "concurrency": CONCURRENCY,
        "crawl_pages_per_s": round(crawl_rate, 1), "scrape_pages_per_s": round(scrape_rate, 1),
        "scrapy_pages_per_s": round(scrapy_rate, 1) if scrapy_rate else None,
        "scrape_vs_crawl": round(scrape_rate / crawl_rate, 3), "crawl_target": CRAWL_TARGET,
        "scrape_vs_scrapy": round(scrape_rate / scrapy_rate, 2) if scrapy_rate else None,
        "scrapy_target": SCRAPY_TARGET, "runs": runs,
        "sanity": all(r["scrape"]["items"] == products and (r["scrapy"] is None or r["scrapy"]["items"] == products)
                      for r in runs),
    }  # fmt: skip


def report(results: dict[str, Any], console: Any) -> None:
    from rich.table import Table

    table = Table(title=f"Scrape of the demo shop ({results['products']} products): pages/s, medians",
                  title_justify="left")  # fmt: skip
    for column in ("crawl", "scrape", "Scrapy scrape", "scrape / crawl (target)", "scrape / Scrapy (target)", "ok"):
        table.add_column(column, justify="right")
    scrapy = results["scrapy_pages_per_s"]
    table.add_row(
        f"{results['crawl_pages_per_s']:.0f}",
        f"{results['scrape_pages_per_s']:.0f}",
        f"{scrapy:.0f}" if scrapy else "-",
        f"{results['scrape_vs_crawl']:.2f} (>= {results['crawl_target']})",
        f"{results['scrape_vs_scrapy']:.1f}x (>= {results['scrapy_target']:.0f}x)" if scrapy else "-",
        "yes" if results["sanity"] else "NO: item counts differ",
    )
    console.print(table)


def main(repeat: int, quick: bool, console: Any) -> int:
    return run_and_save("scrape", run, report, repeat, quick, console)
