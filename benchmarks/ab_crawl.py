"""Two source trees on one small-page crawl, alternating in one run: did a change move it?

    python -m benchmarks.ab_crawl A_TREE B_TREE [--rounds 14] [--pages 1000] [--images] [--slow-s S] [--out FILE]

Each tree (a checkout, e.g. a ``git worktree`` of the commit before a change) gets
its own Redis and warm worker, started with ``PYTHONPATH=<tree>`` so the worker
imports that tree's code; the demo site (by default with its slow page answering
at once: the ``throughput`` shape of ``benchmarks.crawl``; ``--slow-s 1.5`` is the
site as users get it) and the raw crawler are shared; ``--images`` crawls with
the images (as ``crawl --images`` does; the raw crawler fetches pages only).
Each round runs raw, then A and B in alternating order, each crawl timed from
submit to the final state, its report written before the next one starts.
Per-round ratios on a 2-vCPU VM spread widely (0.4-0.85), so what counts is the
median of the paired differences B - A: wall time and the worker main
process's CPU (from ``/proc``), which a per-page change moves first.

Run it from outside both trees (``cd /tmp``) with ``PYTHONPATH`` naming the tree
whose ``benchmarks`` package should run: ``python -m celery`` puts the current
directory first on ``sys.path``, so a worker started from inside a checkout
imports that checkout whatever its ``PYTHONPATH`` says.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import procstat
from benchmarks.crawl import SiteProcess, pipeline_crawl, raw_crawl
from benchmarks.harness import Cluster
from benchmarks.machine import machine


def _crawl(cluster: Cluster, seed: str, images: bool) -> tuple[float, dict[str, float]]:
    pids = cluster.pids()
    before = procstat.snapshot(pids)
    result = pipeline_crawl(cluster, seed, images=images)
    cpu = {label: figures["cpu_s"] for label, figures in procstat.delta(before, procstat.snapshot(pids)).items()}
    return float(result["wall_s"]), cpu


def compare(
    a_tree: Path, b_tree: Path, rounds: int, pages: int, images: bool = False, slow_s: float = 0.0
) -> dict[str, Any]:
    walls: dict[str, list[float]] = {"raw": [], "A": [], "B": []}
    cpus: dict[str, list[dict[str, float]]] = {"A": [], "B": []}
    with (
        tempfile.TemporaryDirectory(prefix="ab-crawl-") as tmp,
        Cluster(Path(tmp) / "a", env={"PYTHONPATH": str(a_tree)}) as a,
        Cluster(Path(tmp) / "b", env={"PYTHONPATH": str(b_tree)}) as b,
    ):
        site = SiteProcess(pages, slow_s=slow_s)
        try:
            seed = site.url + "/"
            asyncio.run(raw_crawl(seed))  # warm every side up once
            _crawl(a, seed, images)
            _crawl(b, seed, images)
            for index in range(rounds):
                started = time.perf_counter()
                asyncio.run(raw_crawl(seed))
                walls["raw"].append(time.perf_counter() - started)
                order = [("A", a), ("B", b)] if index % 2 == 0 else [("B", b), ("A", a)]
                for name, cluster in order:
                    wall, cpu = _crawl(cluster, seed, images)
                    walls[name].append(wall)
                    cpus[name].append(cpu)
        finally:
            site.close()
    raw = statistics.median(walls["raw"])

    def side(name: str) -> dict[str, Any]:
        main_cpu = [c.get("worker_main", 0.0) for c in cpus[name]]
        return {
            "wall_s": round(statistics.median(walls[name]), 3),
            "ratio_to_raw": round(raw / statistics.median(walls[name]), 3),
            "worker_main_cpu_s": round(statistics.median(main_cpu), 3),
        }

    return {
        "a_tree": str(a_tree), "b_tree": str(b_tree), "rounds": rounds, "site_pages": pages, "images": images,
        "slow_page_s": slow_s,
        "raw_wall_s": round(raw, 3), "A": side("A"), "B": side("B"),
        "b_minus_a_wall_s": round(statistics.median(b - a for a, b in zip(walls["A"], walls["B"], strict=True)), 3),
        "b_minus_a_worker_main_cpu_s": round(statistics.median(
            cb.get("worker_main", 0.0) - ca.get("worker_main", 0.0)
            for ca, cb in zip(cpus["A"], cpus["B"], strict=True)), 3),
        "walls": walls, "cpu": cpus,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("a_tree", type=Path, help="the tree before the change")
    parser.add_argument("b_tree", type=Path, help="the tree with it")
    parser.add_argument("--rounds", type=int, default=14)
    parser.add_argument("--pages", type=int, default=1000)
    parser.add_argument("--images", action="store_true", help="crawl with --images (default ops)")
    parser.add_argument("--slow-s", type=float, default=0.0, help="the site's slow page (1.5: as users get it)")
    parser.add_argument("--out", type=Path, help="also write the result here (JSON)")
    args = parser.parse_args()
    compared = compare(args.a_tree.resolve(), args.b_tree.resolve(), args.rounds, args.pages, args.images, args.slow_s)
    result = {"machine_start": machine(), **compared, "machine_end": machine()}
    summary = {k: result[k] for k in ("raw_wall_s", "A", "B", "b_minus_a_wall_s", "b_minus_a_worker_main_cpu_s")}
    print(json.dumps(summary, indent=2))
    if args.out is not None:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
