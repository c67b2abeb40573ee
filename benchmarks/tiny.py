"""``python -m benchmarks tiny``: 20,000 tiny items end to end vs one Celery task per item.

Tiny = a 16x16 PNG on local disk, ``grayscale`` to PNG: per-item work of a
fraction of a millisecond, so what is measured is what each system costs per
item. Three runs, alternating, medians:

pipeline   one image job of the folder on the warm worker (process pool of 2),
           submit -> final state in the ledger
celery     a plain Celery app on the same Redis (JSON, no result backend, prefork
           pool of 2 processes -- faster than threads -c 2 here, see
           ``BASELINE_POOL``), ONE TASK PER ITEM doing the same work (read_file,
           transform_image, OutputDir.write) and an INCR of a counter, sent as a
           group; submit -> counter = items, on the same items as the pipeline
raw        multiprocessing.Pool(2), the same work in chunks of 100: the ceiling of
           this machine for this work with no job system at all

Outputs of all three go to ``OUT_ROOT`` (``/tmp``, tmpfs on the benchmark machine): on this VM's
ext4, two processes creating and renaming small files in one folder cost
0.6-1.5 ms per file, and vary 5x from run to run with the neighbours' I/O,
which would drown what is compared here. Set ``BENCH_TINY_OUT`` to a folder
on disk to measure that instead.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import redis
from celery import Celery, group

from benchmarks import procstat
from benchmarks.saving import run_and_save
from pipeline.core.fetch import read_file
from pipeline.core.imaging import TransformPlan, transform_image
from pipeline.core.names import output_name
from pipeline.core.ops import parse_format, parse_ops
from pipeline.outputs import OutputDir

ITEMS = 20_000
BASELINE_ITEMS = ITEMS  # the same items through every side
OPS, FORMAT = "grayscale", "png"
BASELINE_POOL = os.environ.get("BENCH_TINY_POOL", "prefork")
TARGET_RATIO, TARGET_ITEMS_PER_S = 10.0, 10_000.0
BROKER_ENV, COUNTER = "BENCH_TINY_BROKER", "bench:tiny:done"
# Not /dev/shm: the pipeline refuses to write under /dev (pipeline.output_dirs); /tmp is tmpfs on many machines.
OUT_ROOT = Path(os.environ.get("BENCH_TINY_OUT") or "/tmp")
MAX_BYTES = 50 * 2**20

# -- the baseline: a plain Celery app, one task per item ---------------------------------
baseline = Celery("tinybase", broker=os.environ.get(BROKER_ENV, "redis://127.0.0.1:1/0"))
baseline.conf.update(
    task_serializer="json", accept_content=["json"], task_ignore_result=True,
    task_default_queue="tiny", broker_connection_retry_on_startup=True,
)  # fmt: skip
_counter: redis.Redis | None = None


@baseline.task(name="tiny.item")
def tiny_item(src: str, out_dir: str, plan_json: dict[str, Any], extension: str) -> None:
    global _counter
    data = read_file(src, MAX_BYTES)
    output = transform_image(data, plan_json)
    OutputDir(out_dir).write(output_name(src, extension), output.data)
    if _counter is None:
        _counter = redis.Redis.from_url(baseline.conf.broker_url)
    _counter.incr(COUNTER)


class CeleryBaseline:
    """``celery worker`` on the baseline app (own session, like our worker), and timed groups."""

    def __init__(self, url: str, log_path: Path, pool: str = BASELINE_POOL) -> None:
        self.url, self.pool = url, pool
        command = [sys.executable, "-m", "celery", "-A", "benchmarks.tiny:baseline", "worker", "--pool", pool,
                   "--concurrency", "2", "--queues", "tiny", "--loglevel", "WARNING", "--without-mingle",
                   "--without-gossip", "--without-heartbeat"]  # fmt: skip
        env = {**os.environ, BROKER_ENV: url}
        with log_path.open("ab") as log:
            self.process = subprocess.Popen(command, env=env, stdout=log, stderr=log, start_new_session=True)
        self.client = redis.Redis.from_url(url)
        baseline.conf.broker_url = url

    def run(self, paths: list[Path], out_dir: Path, *, plan_json: dict[str, Any], extension: str) -> dict[str, Any]:
        out_dir.mkdir(parents=True, exist_ok=True)
        self.client.set(COUNTER, 0)
        cpu = CpuMeter([self.process.pid, *procstat.children_of(self.process.pid)])
        started = time.perf_counter()
        group(tiny_item.s(str(p), str(out_dir), plan_json, extension) for p in paths).apply_async()
        submitted = time.perf_counter()
        deadline = time.monotonic() + 600
        while int(self.client.get(COUNTER) or 0) < len(paths):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the Celery baseline stopped or stalled ({self.client.get(COUNTER)!r} done)")
            time.sleep(0.01)
        wall = time.perf_counter() - started
        return {"items": len(paths), "wall_s": round(wall, 3), "submit_s": round(submitted - started, 3),
                "items_per_s": round(len(paths) / wall, 1), "cpu_us_per_item": cpu.per_item(len(paths))}  # fmt: skip

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.client.close()


# -- the ceiling: a raw pool, chunked ------------------------------------------------------
def _raw_item(out_dir: str, plan_json: dict[str, Any], extension: str, src: str) -> None:
    output = transform_image(read_file(src, MAX_BYTES), plan_json)
    OutputDir(out_dir).write(output_name(src, extension), output.data)


def raw_run(pool: Any, paths: list[Path], out_dir: Path, plan_json: dict[str, Any], extension: str) -> dict[str, Any]:
    out_dir.mkdir(parents=True, exist_ok=True)
    cpu = CpuMeter([p.pid for p in pool._pool])
    started = time.perf_counter()
    pool.map(partial(_raw_item, str(out_dir), plan_json, extension), [str(p) for p in paths], chunksize=100)
    wall = time.perf_counter() - started
    return {"items": len(paths), "wall_s": round(wall, 3), "items_per_s": round(len(paths) / wall, 1),
            "cpu_us_per_item": cpu.per_item(len(paths))}  # fmt: skip


class CpuMeter:
    """CPU seconds of some processes (and the benchmark's own) from now until ``per_item``."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = {f"p{pid}": pid for pid in pids} | {"bench_client": os.getpid()}
        self.before = procstat.snapshot(self.pids)

    def per_item(self, items: int) -> dict[str, int]:
        used = procstat.delta(self.before, procstat.snapshot(self.pids))
        client = used.pop("bench_client", {"cpu_s": 0.0})["cpu_s"]
        return {"workers": round(1e6 * sum(u["cpu_s"] for u in used.values()) / items),
                "bench_client": round(1e6 * client / items)}  # fmt: skip


# -- the benchmark ------------------------------------------------------------------------
def run(repeat: int, quick: bool, log: Any) -> dict[str, Any]:
    from benchmarks import data
    from benchmarks.harness import Cluster

    items = 5_000 if quick else ITEMS
    base_items = items if quick else BASELINE_ITEMS
    data.ensure_tiny(ITEMS, log)
    folder = data.tiny_folder(ITEMS) / "part-0"
    paths = data.tiny_paths(ITEMS)[:items]
    if quick:  # a folder of exactly `items` files: the job's source is a folder, as a user would give it
        folder = data.tiny_folder(ITEMS) / "quick"
        if len(list(folder.glob("*.png"))) != items:
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            for path in paths:
                os.link(path, folder / path.name)
    plan = TransformPlan(parse_ops(OPS), parse_format(FORMAT), 85)
    plan_json, ext = plan.to_json(), plan.extension
    workdir = data.RESULTS / "tmp" / f"tiny-{os.getpid()}"
    out_root = OUT_ROOT / f"pipeline-bench-tiny-{os.getpid()}"
    runs: dict[str, list[dict[str, Any]]] = {"pipeline": [], "celery": [], "raw": []}
    count = 0

    def out(label: str) -> Path:
        nonlocal count
        count += 1
        return out_root / f"{count:03d}-{label}"

    raw_pool = multiprocessing.get_context("fork").Pool(
        2, initializer=signal.signal, initargs=(signal.SIGTERM, signal.SIG_DFL)
    )
    celery: CeleryBaseline | None = None
    try:
        with Cluster(workdir, processes=2, log_path=data.RESULTS / "worker-tiny.log") as cluster:
            assert cluster.redis is not None
            celery = CeleryBaseline(cluster.redis.url, data.RESULTS / "celery-tiny.log")
            warm = paths[:500]  # imports, Lua script loads, the page cache, the baseline's first connections
            cluster.run_images(warm, out("warm"), fmt=FORMAT, ops=OPS)
            celery.run(warm, out("warm-celery"), plan_json=plan_json, extension=ext)
            raw_run(raw_pool, warm, out("warm-raw"), plan_json, ext)
            runners: dict[str, Callable[[Path], dict[str, Any]]] = {
                "pipeline": lambda o: cluster.run_images([folder], o, fmt=FORMAT, ops=OPS, count=items, timeout_s=600),
                "celery": partial(celery.run, paths[:base_items], plan_json=plan_json, extension=ext),
                "raw": lambda o: raw_run(raw_pool, paths, o, plan_json, ext),
            }
            names = list(runners)
            for index in range(repeat):
                for name in names[index % 3 :] + names[: index % 3]:
                    target = out(name)
                    try:
                        result = runners[name](target)
                    finally:
                        shutil.rmtree(target, ignore_errors=True)
                    if name == "pipeline" and (result["state"] != "succeeded" or result["ok"] != items):
                        raise RuntimeError(f"the pipeline job did not process every item: {result}")
                    if name == "pipeline":
                        result["items_per_s"] = result.pop("images_per_s")
                    runs[name].append(result)
                    log(f"tiny round {index + 1}/{repeat} {name:<9} {result['items_per_s']:9.1f} items/s")
    finally:
        if celery is not None:
            celery.close()
        raw_pool.close()
        raw_pool.join()
        shutil.rmtree(out_root, ignore_errors=True)
        shutil.rmtree(workdir, ignore_errors=True)
    return summarise(runs, items, base_items)


def summarise(runs: dict[str, list[dict[str, Any]]], items: int, base_items: int) -> dict[str, Any]:
    med = {name: round(statistics.median(r["items_per_s"] for r in rs), 1) for name, rs in runs.items()}
    ratio = round(med["pipeline"] / med["celery"], 2)
    pipe = runs["pipeline"]
    cpu: dict[str, float] = {}
    for run in pipe:
        for label, usage in run["cpu"].items():
            group_name = "pool_children" if label.startswith("pool_child") else label
            cpu[group_name] = cpu.get(group_name, 0.0) + usage["cpu_s"]
    return {
        "items": items, "baseline_items": base_items, "ops": OPS, "format": FORMAT, "out_root": str(OUT_ROOT),
        "baseline_pool": f"{BASELINE_POOL} -c 2",
        "pipeline_items_per_s": med["pipeline"], "celery_items_per_s": med["celery"],
        "raw_items_per_s": med["raw"], "ratio": ratio, "ratio_target": TARGET_RATIO,
        "meets_ratio": ratio >= TARGET_RATIO, "items_per_s_target": TARGET_ITEMS_PER_S,
        "meets_items_per_s": med["pipeline"] >= TARGET_ITEMS_PER_S,
        "pipeline_share_of_raw": round(med["pipeline"] / med["raw"], 3),
        "pipeline_cpu_us_per_item": {k: round(1e6 * v / (items * len(pipe))) for k, v in sorted(cpu.items())},
        **{f"{name}_cpu_us_per_item": {k: round(statistics.median(r["cpu_us_per_item"][k] for r in runs[name]))
                                        for k in ("workers", "bench_client")} for name in ("celery", "raw")},
        "pipeline_submit_s": round(statistics.median(r["submit_s"] for r in pipe), 3),
        "foreign_cores": round(statistics.mean(r["load"]["foreign_cores"] for r in pipe), 2),
        "runs": runs,
    }  # fmt: skip


def report(results: dict[str, Any], console: Any) -> None:
    from rich.table import Table

    r = results
    table = Table(title=f"Tiny items: {r['items']} 16x16 PNGs, {r['ops']} -> {r['format']}, outputs on "
                        f"{r['out_root']} (medians)", title_justify="left")  # fmt: skip
    for column in ("pipeline items/s", f"Celery 1 task/item ({r['baseline_pool']}) items/s", "ratio", "target",
                   "raw Pool(2) items/s", "pipeline / raw", "others' load"):  # fmt: skip
        table.add_column(column, justify="right")
    verdict = "[green]meets[/]" if r["meets_ratio"] and r["meets_items_per_s"] else "[red]MISSES[/]"
    table.add_row(f"{r['pipeline_items_per_s']:.0f}", f"{r['celery_items_per_s']:.0f}", f"{r['ratio']:.1f}x",
                  f">= {r['ratio_target']:.0f}x and >= {r['items_per_s_target']:.0f}/s {verdict}",
                  f"{r['raw_items_per_s']:.0f}", f"{r['pipeline_share_of_raw']:.2f}",
                  f"{r['foreign_cores']:.2f} cores")  # fmt: skip
    console.print(table)
    cpu = ", ".join(f"{k} {v}" for k, v in r["pipeline_cpu_us_per_item"].items())
    console.print(f"  pipeline CPU per item (us): {cpu}; submit took {r['pipeline_submit_s']} s")
    console.print(f"  Celery baseline CPU per item (us): {r['celery_cpu_us_per_item']} (Redis not counted); "
                  f"raw Pool(2): {r['raw_cpu_us_per_item']}")  # fmt: skip


def main(repeat: int, quick: bool, console: Any) -> int:
    return run_and_save("tiny", run, report, repeat, quick, console)
