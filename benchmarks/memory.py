"""``python -m benchmarks memory``: is memory flat in the number of items?

A 10,000-item and a 100,000-item image job (16x16 PNGs, ``grayscale`` to PNG,
on the warm worker with a pool of 2) while every process involved is sampled
every 0.2 s: the producer (``pipeline submit`` done in a subprocess, which
also reports its own peak, ``VmHWM``), the worker's main process (which runs
the stages and the reduce step), its pool children, and ``redis-server``
(RSS and ``used_memory``). Nothing that is O(items) may live in a process:
the 100,000-item job's peaks should be about the 10,000-item job's, not ten
times them. Redis keeps one record per item by design (the ledger: the item
set, its result, its output name); its growth is reported per item.

Run as ``python -m benchmarks.memory URL HOME FOLDER OUT`` it is the producer:
submits one job and prints ``{"job_id", "submit_s", "vmhwm_kb"}``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks.saving import run_and_save
from pipeline.kinds import job_document

SAMPLE_S = 0.2
SIZES = (10_000, 100_000)
OPS, FORMAT = "grayscale", "png"


def _status_kb(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class Sampler(threading.Thread):
    """RSS (MiB) of named processes, Redis ``used_memory`` and job progress, every ``SAMPLE_S``."""

    def __init__(self, pids: dict[str, int], client: Any, job_key: str) -> None:
        super().__init__(daemon=True)
        self.pids, self.client, self.job_key = pids, client, job_key
        self.samples: list[dict[str, Any]] = []
        self.stop_event = threading.Event()

    def run(self) -> None:
        started = time.monotonic()
        while not self.stop_event.is_set():
            row: dict[str, Any] = {"t": round(time.monotonic() - started, 2)}
            for name, pid in self.pids.items():
                row[name] = round(_status_kb(pid, "VmRSS") / 1024, 1)
            ok, failed = self.client.hmget(self.job_key + ":stats", ["ok", "failed"]) if self.job_key else (0, 0)
            row["done"] = int(ok or 0) + int(failed or 0)
            row["redis_used_mib"] = round(int(self.client.info("memory")["used_memory"]) / 2**20, 1)
            self.samples.append(row)
            self.stop_event.wait(SAMPLE_S)


def submit_in_subprocess(url: str, home: Path, folder: Path, out: Path, pids: dict[str, int]) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "benchmarks.memory", url, str(home), str(folder), str(out)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIPELINE_")}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
    pids["producer"] = process.pid
    return process


def measure(cluster: Any, folder: Path, items: int, out: Path, log: Any) -> dict[str, Any]:
    from pipeline.ledger.keys import job_key

    assert cluster.redis is not None
    client = cluster.ledger.client
    pids = {k: v for k, v in cluster.pids().items() if k == "worker_main" or k.startswith(("pool_child", "redis"))}
    redis_before = int(client.info("memory")["used_memory"])
    sampler = Sampler(pids, client, "")
    started = time.perf_counter()
    process = submit_in_subprocess(cluster.redis.url, cluster.workdir / "home", folder, out, pids)
    sampler.start()
    try:
        while process.poll() is None:  # follow the job's progress as soon as it exists
            newest = client.zrevrange("pl:jobs", 0, 0)
            if newest and str(out) in (client.hget(job_key(newest[0]), "output_dir") or ""):
                sampler.job_key = job_key(newest[0])
            time.sleep(0.02)
        producer = json.loads(process.stdout.read() if process.stdout else "")
        key = sampler.job_key = job_key(producer["job_id"])
        deadline = time.monotonic() + 900
        while not client.hget(key, "report"):  # final state, then the reduce step's report
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"job {producer['job_id']} did not finish: {job_document(cluster.ledger, producer['job_id'])}"
                )
            time.sleep(0.05)
        wall = time.perf_counter() - started
        time.sleep(2 * SAMPLE_S)
    finally:
        sampler.stop_event.set()
        sampler.join(5)
        if process.poll() is None:
            process.kill()
    doc = job_document(cluster.ledger, producer["job_id"])
    if doc["images"]["ok"] != items:
        raise RuntimeError(f"the job did not process every item: {doc['images']}")
    samples = sampler.samples
    names = [n for n in pids if n != "producer"]
    peaks = {n: max((s[n] for s in samples), default=0.0) for n in names}
    peaks["producer"] = round(producer["vmhwm_kb"] / 1024, 1)
    at = {}
    for share in (0.1, 0.5, 1.0):
        row = next((s for s in samples if s["done"] >= share * items), samples[-1] if samples else {})
        at[f"{int(share * 100)}%"] = {n: row.get(n) for n in [*names, "redis_used_mib"]}
    redis_peak = max((s["redis_used_mib"] for s in samples), default=0.0) * 2**20
    redis_after = int(client.info("memory")["used_memory"])
    result = {
        "items": items, "wall_s": round(wall, 2), "items_per_s": round(items / wall, 1),
        "producer_submit_s": producer["submit_s"], "peak_rss_mib": peaks, "rss_mib_at_progress": at,
        "redis_used_mib_before": round(redis_before / 2**20, 1), "redis_used_mib_peak": round(redis_peak / 2**20, 1),
        "redis_bytes_per_item": round((redis_after - redis_before) / items),
        "samples": len(samples),
    }  # fmt: skip
    log(
        f"memory {items} items: {result['items_per_s']} items/s, peaks {peaks}, "
        f"redis {result['redis_bytes_per_item']} B/item"
    )
    return result


def run(repeat: int, quick: bool, log: Any) -> dict[str, Any]:
    from benchmarks import data
    from benchmarks.harness import Cluster

    sizes = (2_000, 20_000) if quick else SIZES
    data.ensure_tiny(SIZES[1], log)
    folders = {}
    for size in sizes:  # a folder of exactly `size` files (hard links), as a user would give it
        folder = data.tiny_folder(SIZES[1]) / f"first-{size}"
        if len(list(folder.rglob("*.png"))) != size:
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            for path in data.tiny_paths(SIZES[1])[:size]:
                os.link(path, folder / path.name)
        folders[size] = folder
    workdir = data.RESULTS / "tmp" / f"memory-{os.getpid()}"
    out_root = Path("/dev/shm" if Path("/dev/shm").is_dir() else "/tmp") / f"pipeline-bench-memory-{os.getpid()}"
    results: dict[str, Any] = {"ops": OPS, "format": FORMAT, "sample_s": SAMPLE_S, "jobs": {}}
    try:
        with Cluster(workdir, processes=2, log_path=data.RESULTS / "worker-memory.log") as cluster:
            cluster.run_images(data.tiny_paths(SIZES[1])[:500], out_root / "warm", fmt=FORMAT, ops=OPS)
            for size in sizes:
                results["jobs"][str(size)] = measure(cluster, folders[size], size, out_root / f"job-{size}", log)
                shutil.rmtree(out_root / f"job-{size}", ignore_errors=True)
    finally:
        shutil.rmtree(out_root, ignore_errors=True)
        shutil.rmtree(workdir, ignore_errors=True)
    small, big = (results["jobs"][str(s)] for s in sizes)
    results["peak_growth"] = {
        n: round(big["peak_rss_mib"][n] / small["peak_rss_mib"][n], 2)
        for n in small["peak_rss_mib"] if small["peak_rss_mib"][n]
    }  # fmt: skip
    results["items_ratio"] = sizes[1] / sizes[0]
    return results


def report(results: dict[str, Any], console: Any) -> None:
    from rich.table import Table

    jobs = results["jobs"]
    names = list(next(iter(jobs.values()))["peak_rss_mib"])
    table = Table(title="Memory: peak RSS (MiB) per process over a whole job (sampled every 0.2 s; producer: VmHWM)",
                  title_justify="left")  # fmt: skip
    for column in ("job", *names, "redis used_memory peak MiB", "Redis bytes/item", "items/s"):
        table.add_column(column, justify="right")
    for size, job in jobs.items():
        table.add_row(f"{int(size):,} items", *(f"{job['peak_rss_mib'][n]:.1f}" for n in names),
                      f"{job['redis_used_mib_peak']:.1f}", str(job["redis_bytes_per_item"]),
                      f"{job['items_per_s']:.0f}")  # fmt: skip
    table.add_row(f"growth ({results['items_ratio']:.0f}x items)",
                  *(f"{results['peak_growth'].get(n, 0):.2f}x" for n in names), "", "", "")  # fmt: skip
    console.print(table)
    big = list(jobs.values())[-1]
    for share, row in big["rss_mib_at_progress"].items():
        console.print(f"  {list(jobs)[-1]}-item job at {share}: " + ", ".join(f"{k} {v}" for k, v in row.items()))


def main(repeat: int, quick: bool, console: Any) -> int:
    return run_and_save("memory", run, report, repeat, quick, console, uses_repeat=False)


def _produce(url: str, home: str, folder: str, out: str) -> None:
    from pipeline.config import Settings
    from pipeline.kinds.images import ImagesSpec
    from pipeline.producer import Producer

    producer = Producer(Settings.load(redis_url=url, home=Path(home)), url)
    started = time.perf_counter()
    job_id = producer.submit(ImagesSpec(sources=[folder], ops=OPS, format=FORMAT, quality=85, output_dir=Path(out)))
    submit_s = time.perf_counter() - started
    producer.close()
    print(json.dumps({"job_id": job_id, "submit_s": round(submit_s, 3), "vmhwm_kb": _status_kb(os.getpid(), "VmHWM")}))


if __name__ == "__main__":
    _produce(*sys.argv[1:5])
