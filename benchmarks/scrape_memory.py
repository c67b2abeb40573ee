"""``python -m benchmarks scrape_memory``: does a 1,000,000-item scrape keep worker and reducer memory flat?

A synthetic site (static files on loopback): an index linking ``PAGES`` pages of
``PER_PAGE`` items each (``<li>`` with a name and a price), scraped with
``--item css:li`` and two fields into a ``.jsonl`` feed, on the warm worker
with a pool of 2. Every process is sampled every 0.2 s; the peaks are split
into the crawl phase (pages fetched, parsed, items extracted: the worker main
process and its pool children) and the reduce phase (the job has ended; the
worker's main process merges the feed and folds the field statistics: the
*reducer*). A 100,000-item scrape of pages of the same shape (a tenth as many; both
more than the job's 64 requests in flight, which bound how many pages a worker
holds at once) is the baseline: flat memory means the 1,000,000-item peaks are
about the same, not ten times them. Redis holds every item once by design (the ledger: the
job's ``feed`` hash); its peak is reported per item.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.memory import SAMPLE_S, Sampler, _status_kb
from benchmarks.saving import run_and_save
from pipeline.demo.server import StaticServer
from pipeline.kinds import job_document
from pipeline.kinds.scrape import ScrapeSpec
from pipeline.ledger.keys import job_key

PER_PAGE = 1000
SIZES = (100_000, 1_000_000)
FIELDS = ("name=css:span::text", "price=css:b::text|float")


def make_site(root: Path, pages: int) -> None:
    """``index.html`` linking ``pages`` pages of ``PER_PAGE`` items each (the same pages for every size)."""
    (root / "p").mkdir(parents=True, exist_ok=True)
    links = "\n".join(f'<a href="p/{n}.html">{n}</a>' for n in range(pages))
    (root / "index.html").write_text(f"<html><body>{links}</body></html>\n")
    for n in range(pages):
        path = root / "p" / f"{n}.html"
        if path.exists():
            continue
        rows = "\n".join(f"<li><span>item {n}-{i}</span> <b>{(n * PER_PAGE + i) % 9973 / 100}</b></li>"
                         for i in range(PER_PAGE))  # fmt: skip
        path.write_text(f"<html><body><ul>\n{rows}\n</ul></body></html>\n")


def measure(cluster: Any, site: StaticServer, pages: int, feed: Path, log: Any) -> dict[str, Any]:
    client = cluster.ledger.client
    pids = {k: v for k, v in cluster.pids().items() if k == "worker_main" or k.startswith(("pool_child", "redis"))}
    redis_before = int(client.info("memory")["used_memory"])
    spec = ScrapeSpec(seeds=[site.url + "/index.html"], item="css:li", fields=FIELDS, feed=feed, robots=False,
                      allow_private=True, max_depth=1, output_dir=feed.parent / "out", overwrite=True)  # fmt: skip
    sampler = Sampler(pids, client, "")
    sampler.start()
    started = time.perf_counter()
    job_id = cluster.producer.submit(spec)
    key = sampler.job_key = job_key(job_id)
    # Only the index page is admitted at first: limit it to its own `pages` links.
    ended_at = 0.0
    deadline = time.monotonic() + 1800
    while not client.hget(key, "report"):
        if not ended_at and client.hget(key, "state") in ("succeeded", "failed", "cancelled"):
            ended_at = time.perf_counter() - started
        if time.monotonic() > deadline:
            raise RuntimeError(f"job {job_id} did not finish: {job_document(cluster.ledger, job_id)}")
        time.sleep(0.05)
    wall = time.perf_counter() - started
    ended_at = ended_at or wall
    redis_peak = max((s["redis_used_mib"] for s in sampler.samples), default=0.0)
    time.sleep(2 * SAMPLE_S)
    sampler.stop_event.set()
    sampler.join(5)
    doc = job_document(cluster.ledger, job_id)
    items = doc["scrape"]["items"]
    lines = sum(1 for _ in feed.open("rb"))
    offset = sampler.samples[0]["t"] if sampler.samples else 0.0
    names = [n for n in pids if n != "redis"]
    crawl = [s for s in sampler.samples if s["t"] - offset <= ended_at]
    reduce = [s for s in sampler.samples if s["t"] - offset > ended_at] or sampler.samples[-1:]
    result = {
        "pages": pages, "items": items, "feed_lines": lines, "wall_s": round(wall, 2),
        "reduce_s": round(wall - ended_at, 2), "items_per_s": round(items / wall, 1),
        "peak_rss_mib_crawl": {n: max((s[n] for s in crawl), default=0.0) for n in names},
        "peak_rss_mib_reduce": {n: max((s[n] for s in reduce), default=0.0) for n in names},
        "worker_main_rss_mib_at_pages_done": _at_progress(crawl, pages + 1),
        "redis_used_mib_peak": redis_peak,
        "redis_bytes_per_item": round((redis_peak * 2**20 - redis_before) / max(items, 1)),
    }  # fmt: skip
    result["reducer_alone"] = reduce_again(cluster.redis.url, job_id)
    log(f"scrape memory {items} items: {result['items_per_s']} items/s, crawl peaks {result['peak_rss_mib_crawl']}, "
        f"reduce peaks {result['peak_rss_mib_reduce']}")  # fmt: skip
    return result


def reduce_again(url: str, job_id: str) -> dict[str, Any]:
    """The job's reduce step again, alone in a fresh process (``python -m benchmarks.scrape_memory URL JOB``):
    the worker's own RSS while reducing includes what its crawl left behind; this is the merge's."""
    command = [sys.executable, "-m", "benchmarks.scrape_memory", url, job_id]
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, check=True)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _reduce_main(url: str, job_id: str) -> None:
    from pipeline.kinds.scrape import SCRAPE
    from pipeline.ledger import Ledger
    from pipeline.ledger.connection import connect

    ledger = Ledger(connect(url))
    before = _status_kb(os.getpid(), "VmRSS")
    started = time.perf_counter()
    SCRAPE.finish(ledger, job_id, None)
    print(json.dumps({"seconds": round(time.perf_counter() - started, 2), "rss_before_mib": round(before / 1024, 1),
                      "peak_mib": round(_status_kb(os.getpid(), "VmHWM") / 1024, 1)}))  # fmt: skip


def _at_progress(samples: list[dict[str, Any]], total: int) -> dict[str, float]:
    """The worker main process's RSS when 10 %, 25 %, 50 %, 75 % and all of the pages were done: a
    plateau means bounded, a climb means something grows with the items."""
    out = {}
    for share in (0.1, 0.25, 0.5, 0.75, 1.0):
        row = next((s for s in samples if s["done"] >= share * total), samples[-1] if samples else {})
        out[f"{int(share * 100)}%"] = row.get("worker_main", 0.0)
    return out


def run(repeat: int, quick: bool, log: Any) -> dict[str, Any]:
    from benchmarks import data
    from benchmarks.harness import Cluster

    sizes = (10_000, 100_000) if quick else SIZES
    workdir = data.RESULTS / "tmp" / f"scrape-memory-{os.getpid()}"
    results: dict[str, Any] = {"per_page": PER_PAGE, "fields": list(FIELDS), "sample_s": SAMPLE_S, "jobs": {}}
    try:
        with Cluster(workdir / "cluster", processes=2, log_path=data.RESULTS / "worker-scrape-memory.log") as cluster:
            for size in sizes:
                pages = size // PER_PAGE
                root = workdir / f"site-{pages}"
                make_site(root, pages)
                with StaticServer(root) as site:
                    feed = workdir / f"feed-{size}" / "items.jsonl"
                    feed.parent.mkdir(parents=True, exist_ok=True)
                    results["jobs"][str(size)] = measure(cluster, site, pages, feed, log)
                shutil.rmtree(feed.parent, ignore_errors=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    small, big = (results["jobs"][str(s)] for s in sizes)
    results["peak_growth"] = {
        phase: {n: round(big[phase][n] / small[phase][n], 2) for n in small[phase] if small[phase][n]}
        for phase in ("peak_rss_mib_crawl", "peak_rss_mib_reduce")
    }
    results["peak_growth"]["reducer_alone"] = round(
        big["reducer_alone"]["peak_mib"] / small["reducer_alone"]["peak_mib"], 2
    )
    results["items_ratio"] = sizes[1] / sizes[0]
    return results


def report(results: dict[str, Any], console: Any) -> None:
    from rich.table import Table

    jobs = results["jobs"]
    first = next(iter(jobs.values()))
    names = list(first["peak_rss_mib_crawl"])
    table = Table(title="Scrape memory: peak RSS (MiB) while crawling / while reducing (sampled every 0.2 s)",
                  title_justify="left")  # fmt: skip
    for column in ("items", *names, "reducer alone", "reduce s", "Redis B/item", "items/s"):
        table.add_column(column, justify="right")
    for size, job in jobs.items():
        cells = [f"{job['peak_rss_mib_crawl'][n]:.0f} / {job['peak_rss_mib_reduce'][n]:.0f}" for n in names]
        alone = job["reducer_alone"]["peak_mib"]
        table.add_row(f"{int(size):,}", *cells, f"{alone:.0f}", f"{job['reduce_s']:.1f}",
                      str(job["redis_bytes_per_item"]), f"{job['items_per_s']:.0f}")  # fmt: skip
    growth = results["peak_growth"]
    table.add_row(f"growth ({results['items_ratio']:.0f}x)",
                  *(f"{growth['peak_rss_mib_crawl'].get(n, 0):.2f}x / {growth['peak_rss_mib_reduce'].get(n, 0):.2f}x"
                    for n in names), "", "", "", "")  # fmt: skip
    console.print(table)


def main(repeat: int, quick: bool, console: Any) -> int:
    return run_and_save("scrape_memory", run, report, repeat, quick, console, uses_repeat=False)


if __name__ == "__main__":
    _reduce_main(sys.argv[1], sys.argv[2])
