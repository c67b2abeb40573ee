"""``python -m benchmarks cache``: the result cache, a job run cold and then again warm.

Two warm workers, each on its own private Redis, run side by side (the idle
one costs nothing measurable): one with the result cache on (the default), one
with it off. Each round, per data set:

off    the job on the worker without a cache (what every job cost before it)
cold   the job with the cache on and empty (flushed first, untimed): every item
       is a miss, transformed and written to the cache
warm   the identical job again: every item is a hit

Medians over ``--repeat`` rounds; ``speedup`` = warm / cold throughput and
``miss overhead`` = 1 - cold / off (what hashing, the lookup and the write cost a
job that finds nothing). Every warm run must report a hit for every image and
write byte-identical outputs. Writes ``results/cache.json``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import statistics
from pathlib import Path
from typing import Any

from benchmarks import data
from benchmarks.harness import Cluster
from benchmarks.saving import run_and_save
from pipeline.kinds import job_document
from pipeline.ledger.cache import clear_cache

OPS, FORMAT = "thumbnail:256", "webp"
CACHE_TTL_S = 7 * 24 * 3600
VARIANTS = ("off", "cold", "warm")


def _median(values: list[float]) -> float:
    return round(statistics.median(values), 2)


def _flush(cluster: Cluster) -> None:
    """Empty the result cache (untimed), so the next job is a cold one."""
    assert cluster.ledger is not None
    clear_cache(cluster.ledger.client)


def _used_memory(cluster: Cluster) -> int:
    assert cluster.ledger is not None
    return int(cluster.ledger.client.info("memory")["used_memory"])


def _digest(folder: Path) -> str:
    outputs = hashlib.sha256()
    for path in sorted(folder.glob(f"*.{FORMAT}")):
        outputs.update(path.name.encode() + b"\0" + path.read_bytes())
    return outputs.hexdigest()


class CacheBench:
    def __init__(self, workdir: Path, repeat: int, count: int, log: Any) -> None:
        self.workdir, self.repeat, self.count, self.log = workdir, repeat, count, log
        self._runs = 0

    def job(self, cluster: Cluster, paths: list[Path], label: str, hits: int) -> tuple[dict[str, Any], Path]:
        self._runs += 1
        out = self.workdir / "out" / f"{self._runs:03d}-{label}"
        result = cluster.run_images(paths, out, fmt=FORMAT, ops=OPS)
        assert cluster.ledger is not None
        found = job_document(cluster.ledger, result["job_id"])["cache_hits"]
        if result["ok"] != len(paths) or found != hits:
            raise RuntimeError(f"{label}: {result['ok']}/{len(paths)} ok, {found} cache hits (expected {hits})")
        result["cache_hits"] = found
        result["cpu_ms_per_image"] = round(1000 * sum(v["cpu_s"] for v in result["cpu"].values()) / len(paths), 3)
        return result, out

    def data_set(self, on: Cluster, off: Cluster, data_set: data.DataSet) -> dict[str, Any]:
        paths = data_set.paths()[: self.count]
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in VARIANTS}
        entry_bytes: list[float] = []
        for index in range(self.repeat):
            # Alternate which side goes first, so drift in the machine's load hits both.
            for side in ("off", "on") if index % 2 == 0 else ("on", "off"):
                if side == "off":
                    result, out = self.job(off, paths, "off", hits=0)
                    runs["off"].append(result)
                    shutil.rmtree(out, ignore_errors=True)
                    continue
                _flush(on)
                before = _used_memory(on)
                cold, cold_out = self.job(on, paths, "cold", hits=0)
                entry_bytes.append((_used_memory(on) - before) / len(paths))
                warm, warm_out = self.job(on, paths, "warm", hits=len(paths))
                if _digest(cold_out) != _digest(warm_out):
                    raise RuntimeError("warm outputs differ from the cold run's")
                runs["cold"].append(cold)
                runs["warm"].append(warm)
                shutil.rmtree(cold_out, ignore_errors=True)
                shutil.rmtree(warm_out, ignore_errors=True)
            last = {name: runs[name][-1]["images_per_s"] for name in VARIANTS}
            self.log(f"{data_set.name} round {index + 1}/{self.repeat}: "
                     + "  ".join(f"{name} {ips:7.1f} img/s" for name, ips in last.items()))  # fmt: skip
        ips = {name: _median([r["images_per_s"] for r in runs[name]]) for name in VARIANTS}
        cpu = {name: _median([r["cpu_ms_per_image"] for r in runs[name]]) for name in VARIANTS}
        transform = {name: _median([r["stage_mean_ms"]["transform"] for r in runs[name]]) for name in VARIANTS}
        return {
            "images": len(paths),
            "images_per_s": ips,
            "wall_s": {name: _median([r["wall_s"] for r in runs[name]]) for name in VARIANTS},
            "speedup_warm_over_cold": round(ips["warm"] / ips["cold"], 2),
            "speedup_warm_over_off": round(ips["warm"] / ips["off"], 2),
            "miss_overhead": round(1 - ips["cold"] / ips["off"], 3),
            # CPU of every process of the job per image: steadier than wall time on a shared machine.
            "cpu_speedup_warm_over_cold": round(cpu["cold"] / cpu["warm"], 2),
            "cpu_miss_overhead": round(cpu["cold"] / cpu["off"] - 1, 3),
            "cpu_ms_per_image": cpu,
            "transform_mean_ms": transform,
            "redis_bytes_per_entry": round(statistics.median(entry_bytes)),
            "foreign_cores": round(statistics.mean(r["load"]["foreign_cores"] for v in runs.values() for r in v), 2),
            "runs": runs,
        }


def run(repeat: int, quick: bool, log: Any) -> dict[str, Any]:
    count = 100 if quick else 400
    workdir = data.RESULTS / "tmp" / f"cache-{os.getpid()}"
    bench = CacheBench(workdir, repeat, count, log)
    sets = (data.LARGE, data.SMALL)
    for data_set in sets:
        data.ensure(data_set, log)
    results: dict[str, Any] = {"settings": {"repeat": repeat, "images_per_set": count, "ops": OPS,
                                            "format": FORMAT, "pool_processes": 2}}  # fmt: skip
    try:
        with (
            Cluster(workdir / "on", log_path=data.RESULTS / "worker-cache-on.log", cache_ttl_s=CACHE_TTL_S) as on,
            Cluster(workdir / "off", log_path=data.RESULTS / "worker-cache-off.log", cache_ttl_s=0) as off,
        ):
            for cluster in (on, off):  # untimed: imports, script loads, page cache
                bench.job(cluster, sets[1].paths()[:40], "warm-up", hits=0)
            _flush(on)
            results["sets"] = {s.name: bench.data_set(on, off, s) for s in sets}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return results


def report(results: dict[str, Any], console: Any) -> None:
    from rich.table import Table

    table = Table(title="Result cache: the same job cold, then warm (medians; off = a worker without the cache)",
                  title_justify="left")  # fmt: skip
    for column in ("data set", "off img/s", "cold img/s", "warm img/s", "warm / cold", "miss overhead",
                   "CPU ms/img off / cold / warm", "CPU cold / warm", "transform ms off / cold / warm", "Redis B/entry",
                   "others' load"):  # fmt: skip
        table.add_column(column, justify="left" if column == "data set" else "right")
    for name, row in results["sets"].items():
        ips, cpu, tr = row["images_per_s"], row["cpu_ms_per_image"], row["transform_mean_ms"]
        table.add_row(
            f"{name} x{row['images']}", f"{ips['off']:.1f}", f"{ips['cold']:.1f}", f"{ips['warm']:.1f}",
            f"{row['speedup_warm_over_cold']:.2f}x", f"{row['miss_overhead']:+.1%}",
            f"{cpu['off']:.1f} / {cpu['cold']:.1f} / {cpu['warm']:.1f}", f"{row['cpu_speedup_warm_over_cold']:.2f}x",
            f"{tr['off']:.2f} / {tr['cold']:.2f} / {tr['warm']:.2f}",
            str(row["redis_bytes_per_entry"]), f"{row['foreign_cores']:.2f}",
        )  # fmt: skip
    console.print(table)
    busy = max(row["foreign_cores"] for row in results["sets"].values())
    if busy > 0.25:
        console.print(f"  [yellow]Others used {busy:.2f} cores during these runs: wall-clock figures are unreliable, "
                      "the CPU columns are the better guide.[/]")  # fmt: skip


def main(repeat: int, quick: bool, console: Any) -> int:
    return run_and_save("cache", run, report, repeat, quick, console)
