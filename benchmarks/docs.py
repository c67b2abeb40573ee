"""``python -m benchmarks docs``: crawl a documentation site and thumbnail its screenshots.

The demo site's docs shape (``pipeline.demo.docs``: ~700 pages of ~20 KB, ~2,000
distinct PNG screenshots and JPEG photos of 10-60 KB, a few shared, a few
missing) in its own process, then, alternating, medians of ``repeat`` rounds:

pipeline  ``submit crawl SEED --images --ops thumbnail:128`` on one warm worker
          (process pool of 2), submit -> final state in the ledger
raw       the same work with no job system, as fast as plainly written Python
          goes: one aiohttp session, 64 requests in flight, a breadth-first crawl
          that parses links and ``<img src>`` with lxml, fetches each image once,
          and feeds a ``multiprocessing.Pool(2)`` (malloc tuned like the
          pipeline's children) chunks of ``RAW_CHUNK`` images' bytes to
          thumbnail (``transform_image``, the same plan) and write. Crawl and
          thumbnails overlap: the pool starts on the first images found
spilled   the same pipeline job on a second worker (its own Redis) with
          ``PIPELINE_HANDOFF=redis``: fetched bytes through Redis blobs and a
          transform task, as before the hand-off went to the fetching worker's pool
scrapy    Scrapy with its ImagesPipeline (``benchmarks/scrapy_peer.py --images``),
          the same concurrency and depth; it also stores each full image

Every side does the same pages and images (checked: pages, and images written,
within 1 %); the ratio is raw wall time over pipeline wall time.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urldefrag, urljoin, urlsplit

import aiohttp
import lxml.html

from benchmarks import data, procstat
from benchmarks.saving import run_and_save
from pipeline.core.document import FINAL_STATES
from pipeline.core.imaging import TransformPlan, transform_image
from pipeline.core.ops import parse_format, parse_ops
from pipeline.demo import docs
from pipeline.kinds import job_document
from pipeline.kinds.crawl import CrawlSpec
from pipeline.ledger.keys import job_key
from workers.processes import _child_init

SEED, PAGES, IMAGES = 11, docs.PAGES, docs.IMAGES
OPS, FORMAT, QUALITY = "thumbnail:128", "jpeg", 85
MAX_DEPTH, CONCURRENCY = 8, 64
RAW_CHUNK = 8  # images per raw pool call: ~20 ms of work, few enough that the pool starts early
RAW_TARGET, SCRAPY_TARGET = 0.8, 3.0
TOLERANCE = 0.01


def images_folder() -> Path:
    return data.DATA / f"docs-s{SEED}-n{IMAGES}"


def _make(k: int) -> tuple[int, int]:
    path = images_folder() / docs.image_path(k).rsplit("/", 1)[1]
    data_ = docs.image_bytes(SEED, k)
    path.write_bytes(data_)
    return k, len(data_)


def ensure_images(log: Any) -> Path:
    """The site's images on disk, drawn once (~30 ms each): the site process loads them at start."""
    folder = images_folder()
    manifest = folder / "manifest.json"
    if manifest.exists() and json.loads(manifest.read_text()).get("images") == IMAGES:
        return folder
    log(f"drawing the docs site's {IMAGES} images into {folder} (once) ...")
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    with multiprocessing.get_context("fork").Pool() as pool:
        sizes = dict(pool.imap_unordered(_make, range(IMAGES), chunksize=16))
    manifest.write_text(json.dumps({"images": IMAGES, "seed": SEED, "bytes_mean": sum(sizes.values()) // IMAGES}))
    return folder


class DocsSiteProcess:
    """The docs site in a child process (``python -m benchmarks.docs --serve``); its URL is the first line."""

    def __init__(self) -> None:
        command = [sys.executable, "-m", "benchmarks.docs", "--serve"]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert self.process.stdout is not None
        self.url = self.process.stdout.readline().strip()
        if not self.url:
            self.close()
            raise RuntimeError(f"the docs site did not start: {command}")

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def _serve() -> None:
    from pipeline.demo.site import DemoSite

    stop = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop)
    folder = images_folder()
    images = {k: (folder / docs.image_path(k).rsplit("/", 1)[1]).read_bytes() for k in range(IMAGES)}
    site = DemoSite(pages=PAGES, seed=SEED, shape="docs", images=IMAGES, image_source=images.__getitem__)
    site.start()
    print(site.url + "/", flush=True)
    signal.sigwait(stop)
    site.stop()


# -- the raw side ---------------------------------------------------------------------------
def _raw_child_init() -> None:
    """The pipeline children's malloc settings; SIGTERM back to its default (the runner's raises SystemExit)."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _child_init()


def _thumbnails(chunk: list[tuple[str, bytes]], out_dir: str, plan_json: dict[str, Any], ext: str) -> int:
    for name, body in chunk:
        output = transform_image(body, plan_json)
        Path(out_dir, name + ext).write_bytes(output.data)
    return len(chunk)


async def raw_crawl(seed: str, pool: Any, out_dir: Path, plan: TransformPlan) -> dict[str, int]:
    """BFS over pages and their images, 64 requests in flight; images go to ``pool`` in chunks as they arrive."""
    host = urlsplit(seed).netloc
    seen = {seed}
    frontier: deque[tuple[str, int, bool]] = deque([(seed, 0, False)])
    counts = {"pages": 0, "images": 0, "failed": 0, "fetched": 0}
    chunk: list[tuple[str, bytes]] = []
    calls: list[Any] = []
    plan_json, ext = plan.to_json(), plan.extension

    def flush() -> None:
        calls.append(pool.apply_async(_thumbnails, (list(chunk), str(out_dir), plan_json, ext)))
        chunk.clear()

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CONCURRENCY)) as session:

        async def one(url: str, depth: int, image: bool) -> None:
            try:
                async with session.get(url, timeout=aiohttp.ClientTimeout(total=10)) as response:
                    body = await response.read()
                    ok, kind, base = response.status == 200, response.content_type, str(response.url)
            except (aiohttp.ClientError, TimeoutError):
                ok, kind, body, base = False, "", b"", url
            if image:
                if ok:
                    counts["fetched"] += 1
                    chunk.append((f"img-{counts['fetched']}", body))
                    if len(chunk) >= RAW_CHUNK:
                        flush()
                else:
                    counts["failed"] += 1
                return
            counts["pages"] += 1
            if not ok or kind != "text/html" or depth >= MAX_DEPTH:
                return
            tree = lxml.html.document_fromstring(body)
            for href, is_image in [*((h, False) for h in tree.xpath("//a/@href")),
                                   *((s, True) for s in tree.xpath("//img/@src"))]:  # fmt: skip
                link = urldefrag(urljoin(base, str(href)))[0]
                if urlsplit(link).netloc == host and link not in seen:
                    seen.add(link)
                    frontier.append((link, depth + 1, is_image))

        running: set[asyncio.Task[None]] = set()
        while frontier or running:
            while frontier and len(running) < CONCURRENCY:
                running.add(asyncio.create_task(one(*frontier.popleft())))
            _, running = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
    if chunk:
        flush()
    counts["images"] = sum(call.get() for call in calls)
    return counts


def _raw_run(seed: str, pool: Any, out_dir: Path, plan: TransformPlan) -> dict[str, Any]:
    out_dir.mkdir(parents=True, exist_ok=True)
    pids = {f"child{i}": p.pid for i, p in enumerate(pool._pool)} | {"bench_client": os.getpid()}
    before = procstat.snapshot(pids)
    started = time.perf_counter()
    counts = asyncio.run(raw_crawl(seed, pool, out_dir, plan))
    wall = time.perf_counter() - started
    cpu = procstat.delta(before, procstat.snapshot(pids))
    return {**counts, "wall_s": round(wall, 3), "cpu_s": {k: v["cpu_s"] for k, v in cpu.items()}}


# -- the pipeline and Scrapy -----------------------------------------------------------------
def _pipeline_run(cluster: Any, seed: str, out_dir: Path) -> dict[str, Any]:
    spec = CrawlSpec(seeds=[seed], max_depth=MAX_DEPTH, images=True, ops=OPS, format=FORMAT, quality=QUALITY,
                     robots=False, concurrency=CONCURRENCY, per_host=CONCURRENCY, allow_private=True,
                     output_dir=out_dir)  # fmt: skip
    pids = cluster.pids()
    before = procstat.snapshot(pids)
    started = time.perf_counter()
    job_id = cluster.producer.submit(spec)
    while cluster.ledger.client.hget(job_key(job_id), "state") not in FINAL_STATES:
        time.sleep(0.01)
    wall = time.perf_counter() - started
    cpu = procstat.delta(before, procstat.snapshot(pids))
    doc = job_document(cluster.ledger, job_id)
    cluster.wait_finalized(job_id)
    pages = doc["pages"]
    groups: dict[str, float] = {}
    for label, usage in cpu.items():
        group = "pool_children" if label.startswith("pool_child") else label
        groups[group] = round(groups.get(group, 0.0) + usage["cpu_s"], 3)
    return {"pages": pages["ok"] + pages["failed"] + pages["non_html"], "images": doc["images"]["ok"],
            "failed": doc["images"]["failed"], "wall_s": round(wall, 3), "state": doc["state"],
            "timings": doc.get("timings", {}), "cpu_s": groups}  # fmt: skip


def _scrapy_run(seed: str, out_dir: Path) -> dict[str, Any] | None:
    command = [sys.executable, "-m", "benchmarks.scrapy_peer", seed, "--max-depth", str(MAX_DEPTH),
               "--concurrency", str(CONCURRENCY), "--images", str(out_dir)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
    if done.returncode != 0:
        if "No module named 'scrapy'" in done.stderr:
            return None
        raise RuntimeError(f"the Scrapy peer failed ({done.returncode}): {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["images"] = result["images"]["ok"]
    return result


def run(repeat: int, quick: bool, log: Any) -> dict[str, Any]:
    from benchmarks.harness import Cluster

    ensure_images(log)
    plan = TransformPlan(parse_ops(OPS), parse_format(FORMAT), QUALITY)
    workdir = data.RESULTS / "tmp" / f"docs-{os.getpid()}"
    pool = multiprocessing.get_context("fork").Pool(2, initializer=_raw_child_init)  # before threads or sockets
    site = DocsSiteProcess()
    runs: dict[str, list[dict[str, Any]]] = {"raw": [], "pipeline": [], "spilled": [], "scrapy": []}
    count = 0

    def out(label: str) -> Path:
        nonlocal count
        count += 1
        return workdir / "out" / f"{count:03d}-{label}"

    try:
        with (
            Cluster(workdir, processes=2, log_path=data.RESULTS / "worker-docs.log") as cluster,
            Cluster(workdir / "spilled", processes=2, log_path=data.RESULTS / "worker-docs-spilled.log",
                    env={"PIPELINE_HANDOFF": "redis"}) as spilled,
        ):  # fmt: skip
            seed = site.url
            _pipeline_run(cluster, seed, out("warm"))  # imports, Lua loads, the site's caches
            _pipeline_run(spilled, seed, out("warm-spilled"))
            _raw_run(seed, pool, out("warm-raw"), plan)
            has_scrapy = not quick and _scrapy_run(seed, out("warm-scrapy")) is not None
            runners: dict[str, Callable[[Path], dict[str, Any] | None]] = {
                "raw": lambda o: _raw_run(seed, pool, o, plan),
                "pipeline": lambda o: _pipeline_run(cluster, seed, o),
                "spilled": lambda o: _pipeline_run(spilled, seed, o),
                **({"scrapy": lambda o: _scrapy_run(seed, o)} if has_scrapy else {}),
            }
            names = list(runners)
            for index in range(repeat):
                for name in names[index % len(names) :] + names[: index % len(names)]:
                    target = out(name)
                    try:
                        result = runners[name](target)
                    finally:
                        shutil.rmtree(target, ignore_errors=True)
                    assert result is not None
                    result["items_per_s"] = round((result["pages"] + result["images"]) / result["wall_s"], 1)
                    runs[name].append(result)
                    log(f"docs round {index + 1}/{repeat} {name:<9} {result['wall_s']:6.2f} s "
                        f"{result['pages']} pages {result['images']} images")  # fmt: skip
    finally:
        site.close()
        pool.close()  # every call has returned: terminate() could catch a child holding the queue's lock
        pool.join()
        shutil.rmtree(workdir, ignore_errors=True)
    return summarise(runs)


def summarise(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    wall = {name: statistics.median(r["wall_s"] for r in rs) for name, rs in runs.items() if rs}
    counts = {name: sorted({(r["pages"], r["images"]) for r in rs}) for name, rs in runs.items() if rs}
    flat_pages = [p for pairs in counts.values() for p, _ in pairs]
    flat_images = [i for pairs in counts.values() for _, i in pairs]
    same = max(flat_pages) <= min(flat_pages) * (1 + TOLERANCE) and max(flat_images) <= min(flat_images) * (
        1 + TOLERANCE
    )
    pipe = runs["pipeline"]
    out: dict[str, Any] = {
        "site": {"shape": "docs", "pages": PAGES, "images": IMAGES, "seed": SEED},
        "ops": OPS, "format": FORMAT, "max_depth": MAX_DEPTH, "concurrency": CONCURRENCY, "raw_chunk": RAW_CHUNK,
        "wall_s": {k: round(v, 3) for k, v in wall.items()},
        "ratio_vs_raw": round(wall["raw"] / wall["pipeline"], 3), "target_vs_raw": RAW_TARGET,
        "pairwise_ratios_vs_raw": [round(r["wall_s"] / p["wall_s"], 3) for r, p in zip(runs["raw"], pipe, strict=True)],
        "spilled_ratio_vs_raw": round(wall["raw"] / wall["spilled"], 3),
        "pipeline_over_spilled": round(wall["spilled"] / wall["pipeline"], 3),
        "spilled_cpu_s": {k: round(statistics.mean(r["cpu_s"].get(k, 0.0) for r in runs["spilled"]), 3)
                          for k in sorted({k for r in runs["spilled"] for k in r["cpu_s"]})},
        "times_scrapy": round(wall["scrapy"] / wall["pipeline"], 2) if "scrapy" in wall else None,
        "target_vs_scrapy": SCRAPY_TARGET,
        "raw_times_scrapy": round(wall["scrapy"] / wall["raw"], 2) if "scrapy" in wall else None,
        "counts": counts, "same_work": same,
        "pipeline_cpu_s": {k: round(statistics.mean(r["cpu_s"].get(k, 0.0) for r in pipe), 3)
                           for k in sorted({k for r in pipe for k in r["cpu_s"]})},
        "raw_cpu_s": {k: round(statistics.mean(r["cpu_s"].get(k, 0.0) for r in runs["raw"]), 3)
                      for k in sorted({k for r in runs["raw"] for k in r["cpu_s"]})},
        "runs": runs,
    }  # fmt: skip
    return out


def report(results: dict[str, Any], console: Any) -> None:
    from rich.table import Table

    r = results
    site = r["site"]
    table = Table(title=f"Docs site ({site['pages']} pages, {site['images']} images): crawl --images --ops {r['ops']}"
                  " (median wall s)", title_justify="left")  # fmt: skip
    for column in ("raw s", "pipeline s", "Scrapy s", "pipeline / raw", "target", "x Scrapy", "target", "same work"):
        table.add_column(column, justify="right")
    wall = r["wall_s"]
    ok_raw = "[green]meets[/]" if r["ratio_vs_raw"] >= r["target_vs_raw"] else "[red]MISSES[/]"
    scrapy = r["times_scrapy"]
    ok_scrapy = "" if scrapy is None else ("[green]meets[/]" if scrapy >= r["target_vs_scrapy"] else "[red]MISSES[/]")
    table.add_row(f"{wall['raw']:.2f}", f"{wall['pipeline']:.2f}", f"{wall.get('scrapy', float('nan')):.2f}",
                  f"{r['ratio_vs_raw']:.2f}", f">= {r['target_vs_raw']} {ok_raw}",
                  "-" if scrapy is None else f"{scrapy:.1f}x", f">= {r['target_vs_scrapy']:g}x {ok_scrapy}",
                  "yes" if r["same_work"] else f"[red]NO[/] {r['counts']}")  # fmt: skip
    console.print(table)
    console.print(f"  bytes through Redis (PIPELINE_HANDOFF=redis): {wall['spilled']:.2f} s, "
                  f"{r['spilled_ratio_vs_raw']:.2f} of raw; the hand-off to the own pool is "
                  f"{r['pipeline_over_spilled']:.2f}x as fast")  # fmt: skip
    console.print(f"  CPU s per run: pipeline {r['pipeline_cpu_s']}; spilled {r['spilled_cpu_s']}; "
                  f"raw {r['raw_cpu_s']}")  # fmt: skip


def main(repeat: int, quick: bool, console: Any) -> int:
    return run_and_save("docs", run, report, repeat, quick, console)


if __name__ == "__main__" and sys.argv[1:2] == ["--serve"]:
    _serve()
