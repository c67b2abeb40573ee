"""``python -m benchmarks pools``: each stage's real work, sequential vs threads vs processes vs asyncio.

The lesson of "Mastering Concurrency in Python", measured on this project's own
stage functions rather than toy loops:

fetch      GET demo-site pages (the server runs in its own process). Blocking urllib
           one at a time; on threads; on processes; on one asyncio loop with aiohttp.
parse      ``pipeline.core.html.parse_page`` over generated demo-site pages.
transform  ``pipeline.core.imaging.transform_image`` (thumbnail:256 webp) on 640x480 JPEGs.
reduce     folding item results (JSON as they arrive) into the first-write-wins ledger
           (``pipeline.core.aggregate``): partial ledgers per worker, merged by the parent;
           and the ledger the pipeline really uses (``ledger``): the same results recorded
           in Redis by ``lua/record.lua`` (``Ledger.record_raw``), ``LEDGER_GROUP`` per call,
           into a job whose items were admitted beforehand (a private redis-server).

Each variant runs ``--repeat`` times (median); speedup is against the sequential
run of the same stage in the same invocation. Amdahl's law is fitted per stage and
pool (``benchmarks/amdahl.py``), each pool against itself with one worker; points with
more workers than cores are left out of the fit except for I/O (fetch on threads or
asyncio), where waiting, not computing, is what more workers overlap. Writes ``results/pools.json`` and one PNG
per stage (``results/pools-<stage>.png``).
"""

from __future__ import annotations

import asyncio
import http.client
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import aiohttp

from benchmarks import data
from benchmarks.amdahl import fit_serial_fraction, speedup
from benchmarks.saving import run_and_save
from pipeline.core.aggregate import ItemResult, Totals
from pipeline.core.html import parse_page
from pipeline.core.imaging import TransformPlan, transform_image
from pipeline.core.ops import parse_ops
from pipeline.demo.sitegen import Origin, page_html
from tests.fold import merge, record
from workers.processes import tune_malloc

PLAN = TransformPlan(parse_ops("thumbnail:256"), format="webp", quality=85).to_json()
CORES = len(os.sched_getaffinity(0))
SITE_PAGES = 2000
THREADS = (1, 2, 4, 8)
PROCESSES = (1, 2)
TASKS_IN_FLIGHT = (1, 4, 16, 64)
STAGES = ("fetch", "parse", "transform", "reduce")
CHOSEN = {"fetch": "asyncio", "parse": "processes", "transform": "processes", "reduce": "ledger"}
LEDGER_GROUP = 100  # results per record call: what a transform batch records at once


# -- the work, one item at a time (module level: process pools pickle these) --------------------


_connections = threading.local()


def fetch_blocking(url: str) -> int:
    """GET on a keep-alive connection per thread, as aiohttp's session keeps them: the pools
    are compared, not connection reuse."""
    parts = urllib.parse.urlsplit(url)
    connection = getattr(_connections, "http", None)
    if connection is None:
        connection = _connections.http = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    connection.request("GET", parts.path)
    response = connection.getresponse()
    body = response.read()
    if response.status != 200:
        raise RuntimeError(f"{url}: HTTP {response.status}")
    return len(body)


def parse_one(body: bytes) -> int:
    return len(parse_page(body, "http://127.0.0.1:8080/page/1.html").links)


def transform_one(path: str) -> int:
    return len(transform_image(Path(path).read_bytes(), PLAN).data)


def fold_chunk(lines: Sequence[str]) -> dict[str, ItemResult]:
    """Parse one worker's share of result messages into a partial ledger."""
    return record({}, (ItemResult.from_json(json.loads(line)) for line in lines))


def _reduce(partials: list[dict[str, ItemResult]]) -> int:
    """Merge partial ledgers pairwise, as a tree (merge is associative), then count."""
    while len(partials) > 1:
        partials = [merge(*partials[i : i + 2]) if i + 1 < len(partials) else partials[i]
                    for i in range(0, len(partials), 2)]  # fmt: skip
    return Totals.of(partials[0] if partials else {}).done


# -- inputs -----------------------------------------------------------------------------------------


class DemoSiteProcess:
    """`pipeline demo-site` in its own process, so the server's work is not the client's."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pipeline", "demo-site", "--port", "0", "--pages", str(SITE_PAGES)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        assert self.process.stdout is not None
        self.url = self.process.stdout.readline().strip().rstrip("/")
        if not self.url.startswith("http://127.0.0.1:"):
            self.close()
            raise RuntimeError("pipeline demo-site did not start")

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def result_lines(count: int) -> list[str]:
    """Item results as the ledger receives them: JSON, one per item, a quarter failed."""
    lines = []
    for n in range(count):
        i = n if n % 10 else n // 2  # every tenth result re-delivers an earlier id: first write wins
        if i % 4:
            result = ItemResult(f"i{i}", True, f"http://h/{i}.jpg", output=f"{i}.webp", bytes_in=50_000,
                                bytes_out=6_000, format="webp", width=256, height=192,
                                timings={"fetch": 0.01, "transform": 0.02})  # fmt: skip
        else:
            result = ItemResult.failure(f"i{i}", f"http://h/{i}.jpg", "http_404", "not found")
        lines.append(json.dumps(result.to_json()))
    return lines


# -- running one variant ----------------------------------------------------------------------------


def _timed(run: Callable[[], object], count: int, repeat: int) -> float:
    """Median items/s over ``repeat`` runs."""
    rates = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        rates.append(count / (time.perf_counter() - started))
    return statistics.median(rates)


def _on(executor: Executor, work: Callable[[Any], object], items: Sequence[Any], chunksize: int = 1) -> None:
    list(executor.map(work, items, chunksize=chunksize))


_POOLS: dict[tuple[str, int], Executor] = {}


def _pool(kind: str, workers: int) -> Executor:
    """One warm pool per kind and size for the whole run: start-up is not what is compared.
    Process children are tuned as the worker's own are (glibc malloc thresholds)."""
    if (kind, workers) not in _POOLS:
        pool: Executor
        if kind == "processes":
            context = multiprocessing.get_context("forkserver")
            pool = ProcessPoolExecutor(workers, mp_context=context, initializer=tune_malloc)
        else:
            pool = ThreadPoolExecutor(workers)
        list(pool.map(abs, range(workers * 4)))
        _POOLS[kind, workers] = pool
    return _POOLS[kind, workers]


def _process_pool(workers: int) -> Executor:
    return _pool("processes", workers)


def close_pools() -> None:
    while _POOLS:
        _POOLS.popitem()[1].shutdown()
    while _LEDGERS:
        _LEDGERS.pop().close()


async def _fetch_async(urls: Sequence[str], in_flight: int) -> None:
    limit = asyncio.Semaphore(in_flight)
    connector = aiohttp.TCPConnector(limit=in_flight)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(url: str) -> None:
            async with limit, session.get(url) as response:
                await response.read()

        await asyncio.gather(*(one(url) for url in urls))


def stage_variants(stage: str, items: Sequence[Any], repeat: int = 1) -> list[tuple[str, int, Callable[[], object]]]:
    """(pool, workers, run) for every way the stage's items can be processed."""
    work: Callable[[Any], object] = {"fetch": fetch_blocking, "parse": parse_one, "transform": transform_one}.get(
        stage, fold_chunk
    )
    if stage == "reduce":
        return _reduce_variants(items, repeat)
    chunk = 1 if stage == "transform" else 8
    variants: list[tuple[str, int, Callable[[], object]]] = [("sequential", 1, lambda: [work(i) for i in items])]
    for n in THREADS:
        variants.append(("threads", n, lambda n=n: _on(_pool("threads", n), work, items, chunk)))
    for n in PROCESSES:
        variants.append(("processes", n, lambda n=n: _on(_process_pool(n), work, items, chunk)))
    if stage == "fetch":
        for n in TASKS_IN_FLIGHT:
            variants.append(("asyncio", n, lambda n=n: asyncio.run(_fetch_async(items, n))))
    return variants


class LuaLedger:
    """A private redis-server with jobs ready to record into: one fresh job per timed run, made beforehand."""

    def __init__(self, lines: Sequence[str], runs: int, workdir: Path) -> None:
        from pipeline.ledger import Ledger
        from pipeline.ledger.connection import connect
        from pipeline.localredis import start_redis

        self.server = start_redis(workdir, appendonly=False)
        self.ledger = Ledger(connect(self.server.url))
        ids = sorted({json.loads(line)["id"] for line in lines})
        self.jobs = []
        for run in range(runs):
            job_id = f"bench-reduce-{run}"
            self.ledger.create_job(job_id, "images", {}, "/nonexistent")
            for start in range(0, len(ids), 500):
                self.ledger.admit_items(job_id, [(i, f"http://h/{i}.jpg", "i") for i in ids[start : start + 500]])
            self.ledger.seal(job_id)
            self.jobs.append(job_id)
        self.lines = lines

    def record_all(self) -> int:
        """Every result line into the next job, ``LEDGER_GROUP`` per Lua call; returns results counted."""
        job_id = self.jobs.pop(0)
        counted = 0
        for start in range(0, len(self.lines), LEDGER_GROUP):
            counted += self.ledger.record_raw(job_id, list(self.lines[start : start + LEDGER_GROUP]))[0]
        return counted

    def close(self) -> None:
        self.ledger.close()
        self.server.stop()


_LEDGERS: list[LuaLedger] = []


def _reduce_variants(lines: Sequence[str], repeat: int = 1) -> list[tuple[str, int, Callable[[], object]]]:
    def split(n: int) -> list[Sequence[str]]:
        size = -(-len(lines) // n)
        return [lines[i : i + size] for i in range(0, len(lines), size)]

    ledger = LuaLedger(lines, repeat + 1, data.RESULTS / "tmp" / f"pools-redis-{os.getpid()}")
    _LEDGERS.append(ledger)
    variants: list[tuple[str, int, Callable[[], object]]] = [("sequential", 1, lambda: _reduce([fold_chunk(lines)]))]
    variants.append(("ledger", 1, ledger.record_all))
    for n in THREADS[:3]:
        variants.append(("threads", n, lambda n=n: _reduce(list(_pool("threads", n).map(fold_chunk, split(n))))))
    for n in PROCESSES:
        variants.append(("processes", n, lambda n=n: _reduce_on_processes(n, split(n))))
    return variants


def _reduce_on_processes(n: int, chunks: list[Sequence[str]]) -> int:
    return _reduce(list(_process_pool(n).map(fold_chunk, chunks)))


# -- the whole comparison ---------------------------------------------------------------------------


def measure(stage: str, items: Sequence[Any], repeat: int, log: Callable[[str], None]) -> dict[str, Any]:
    rows = []
    for pool, workers, run in stage_variants(stage, items, repeat):
        run()  # warm: imports, caches, the server's page cache
        rate = _timed(run, len(items), repeat)
        rows.append({"pool": pool, "workers": workers, "items_per_s": round(rate, 1)})
        log(f"{stage:9} {pool:10} x{workers:<3} {rate:10.1f} items/s")
    base = rows[0]["items_per_s"]
    for row in rows:
        row["speedup"] = round(row["items_per_s"] / base, 2)
    fits = {}
    for pool in sorted({r["pool"] for r in rows} - {"sequential"}):
        # Amdahl is about scaling: each pool against itself with one worker, so a pool's fixed
        # overhead (pickling, thread hand-off) is not mistaken for serial work.
        own = {r["workers"]: r["items_per_s"] for r in rows if r["pool"] == pool}
        points = {n: rate / own[1] for n, rate in own.items()} if 1 in own else {}
        if pool == "processes" or stage != "fetch":  # CPU work: more workers than cores is contention
            points = {n: s for n, s in points.items() if n <= CORES}
        fraction = fit_serial_fraction(points)
        fits[pool] = None if fraction is None else round(fraction, 3)
    best = max(rows, key=lambda r: r["items_per_s"])
    return {"items": len(items), "rows": rows, "serial_fraction": fits, "best": best, "chosen": CHOSEN[stage]}


def run(repeat: int, quick: bool, log: Callable[[str], None]) -> dict[str, Any]:
    count = 300 if quick else 2000
    data.ensure(data.SMALL, log)
    origin = Origin("127.0.0.1", 8080)
    inputs: dict[str, Sequence[Any]] = {
        "parse": [page_html(SITE_PAGES, 7, origin, n) for n in range(count)],
        "transform": [str(p) for p in data.SMALL.paths()[: 60 if quick else 300]],
        "reduce": result_lines(20_000 if quick else 100_000),
    }
    site = DemoSiteProcess()
    try:
        inputs["fetch"] = [f"{site.url}/page/{n}.html" for n in range(count)]
        stages = {stage: measure(stage, inputs[stage], repeat, log) for stage in STAGES}
    finally:
        site.close()
        close_pools()
    return {"cores": CORES, "repeat": repeat, "stages": stages}


def amdahl_curve(fraction: float, workers: Sequence[int]) -> list[float]:
    return [speedup(fraction, n) for n in workers]


def report(results: dict[str, Any], console: Any) -> None:
    """The table: items/s and speedup per stage, pool and workers, and the fitted serial fractions."""
    from rich.table import Table

    table = Table(title=f"pools: each stage's work on each pool ({results['cores']} cores, "
                        f"median of {results['repeat']})")  # fmt: skip
    for column in ("stage", "pool", "workers", "items/s", "speedup", "serial fraction (Amdahl)"):
        table.add_column(column, justify="left" if column in ("stage", "pool") else "right")
    for stage, result in results["stages"].items():
        for row in result["rows"]:
            fraction = result["serial_fraction"].get(row["pool"])
            mark = " (used)" if row["pool"] == result["chosen"] else ""
            table.add_row(stage, row["pool"] + mark, str(row["workers"]), f"{row['items_per_s']:.0f}",
                          f"{row['speedup']:.2f}x", "" if fraction is None else f"{fraction:.2f}")  # fmt: skip
        table.add_section()
    console.print(table)


def _plot(results: dict[str, Any]) -> str:
    from benchmarks.plots import plot_stages

    pictures = plot_stages(results["stages"], CORES, data.RESULTS)
    results["plots"] = [str(p) for p in pictures]
    return f" and {len(pictures)} plots" if pictures else " (no plots: pip install -e '.[bench]' for matplotlib)"


def main(repeat: int, quick: bool, console: Any) -> int:
    return run_and_save("pools", run, report, repeat, quick, console, finish=_plot)
