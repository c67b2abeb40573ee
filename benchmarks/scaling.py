"""``python -m benchmarks scaling``: the CPU stage on 1 vs 2 pool processes.

The same CPU-bound job (400 JPEGs 640x480 -> ``thumbnail:256`` WebP) on two
warm workers, one with ``PIPELINE_PROCESSES=1`` and one with 2 (each with its
own private Redis, both started before the first run and idle while the other
works), and the same work on a raw ``multiprocessing.Pool(1)`` and ``Pool(2)``:
the raw ratio is the ceiling this machine allows (two cores shared with
Redis, the worker's main process and the neighbours). Runs alternate, the
order rotating per round; ratios of medians.
"""

from __future__ import annotations

import os
import shutil
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks import data
from benchmarks.harness import Cluster
from benchmarks.raw import RawPool
from benchmarks.saving import run_and_save
from pipeline.core.imaging import TransformPlan
from pipeline.core.ops import parse_format, parse_ops

OPS, FORMAT = "thumbnail:256", "webp"
TARGET = 1.8


def run(repeat: int, quick: bool, log: Any) -> dict[str, Any]:
    data_set = data.SMALL
    data.ensure(data_set, log)
    paths = data_set.paths()[: 100 if quick else data_set.count]
    plan = TransformPlan(parse_ops(OPS), parse_format(FORMAT), 85)
    workdir = data.RESULTS / "tmp" / f"scaling-{os.getpid()}"
    runs: dict[str, list[dict[str, Any]]] = {"pipeline_1": [], "pipeline_2": [], "raw_1": [], "raw_2": []}
    count = 0

    def out(label: str) -> Path:
        nonlocal count
        count += 1
        return workdir / "out" / f"{count:03d}-{label}"

    raws = {n: RawPool(n, tuned=True) for n in (1, 2)}  # forked before any thread or socket exists
    try:
        with (
            Cluster(workdir / "p1", processes=1, log_path=data.RESULTS / "worker-scaling-1.log") as one,
            Cluster(workdir / "p2", processes=2, log_path=data.RESULTS / "worker-scaling-2.log") as two,
        ):
            clusters = {1: one, 2: two}

            def pipe(n: int) -> Callable[[], dict[str, Any]]:
                def go() -> dict[str, Any]:
                    target = out(f"p{n}")
                    try:
                        result = clusters[n].run_images(paths, target, fmt=FORMAT, ops=OPS, timeout_s=600)
                    finally:
                        shutil.rmtree(target, ignore_errors=True)
                    if result["ok"] != len(paths):
                        raise RuntimeError(f"the pipeline job did not process every image: {result}")
                    return result

                return go

            def raw(n: int) -> Callable[[], dict[str, Any]]:
                def go() -> dict[str, Any]:
                    target = out(f"r{n}")
                    try:
                        return raws[n].run(paths, target, plan.to_json(), plan.extension)
                    finally:
                        shutil.rmtree(target, ignore_errors=True)

                return go

            runners = {"pipeline_1": pipe(1), "pipeline_2": pipe(2), "raw_1": raw(1), "raw_2": raw(2)}
            for runner in runners.values():  # untimed: imports, script loads, page cache
                runner()
            names = list(runners)
            for index in range(repeat):
                for name in names[index % 4 :] + names[: index % 4]:
                    result = runners[name]()
                    runs[name].append(result)
                    log(f"scaling round {index + 1}/{repeat} {name:<11} {result['images_per_s']:8.1f} img/s")
    finally:
        for pool in raws.values():
            pool.close()
        shutil.rmtree(workdir, ignore_errors=True)
    med = {name: round(statistics.median(r["images_per_s"] for r in rs), 2) for name, rs in runs.items()}
    ratio = round(med["pipeline_2"] / med["pipeline_1"], 3)
    raw_ratio = round(med["raw_2"] / med["raw_1"], 3)
    return {
        "data_set": data_set.name, "images": len(paths), "ops": OPS, "format": FORMAT,
        **{f"{name}_images_per_s": value for name, value in med.items()},
        "ratio": ratio, "raw_ratio": raw_ratio, "target": TARGET, "meets_target": ratio >= TARGET,
        "share_of_raw_scaling": round(ratio / raw_ratio, 3),
        "pairwise_ratios": [round(b["images_per_s"] / a["images_per_s"], 3)
                            for a, b in zip(runs["pipeline_1"], runs["pipeline_2"], strict=True)],
        "foreign_cores": round(statistics.mean(r["load"]["foreign_cores"] for rs in runs.values() for r in rs), 2),
        "runs": runs,
    }  # fmt: skip


def report(results: dict[str, Any], console: Any) -> None:
    from rich.table import Table

    r = results
    table = Table(title=f"Scaling: {r['images']} JPEGs {r['data_set']} -> {r['ops']} {r['format']}, 1 vs 2 pool "
                        "processes (medians)", title_justify="left")  # fmt: skip
    for column in ("pipeline 1 proc img/s", "pipeline 2 procs img/s", "ratio", "target", "raw Pool(1) img/s",
                   "raw Pool(2) img/s", "raw ratio (ceiling)", "per-round ratios", "others' load"):  # fmt: skip
        table.add_column(column, justify="right")
    verdict = "[green]meets[/]" if r["meets_target"] else "[red]MISSES[/]"
    table.add_row(f"{r['pipeline_1_images_per_s']:.1f}", f"{r['pipeline_2_images_per_s']:.1f}", f"{r['ratio']:.2f}x",
                  f">= {r['target']}x {verdict}", f"{r['raw_1_images_per_s']:.1f}", f"{r['raw_2_images_per_s']:.1f}",
                  f"{r['raw_ratio']:.2f}x", " ".join(f"{x:.2f}" for x in r["pairwise_ratios"]),
                  f"{r['foreign_cores']:.2f} cores")  # fmt: skip
    console.print(table)


def main(repeat: int, quick: bool, console: Any) -> int:
    return run_and_save("scaling", run, report, repeat, quick, console)
