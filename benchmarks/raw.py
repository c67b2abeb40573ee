"""The baseline: a plain ``multiprocessing.Pool(2)`` doing exactly the pipeline child's work.

Each call (a chunk of ``RAW_CHUNK`` images) reads the source files *in the child*, calls the pipeline's own
``transform_image`` (same decode, ``draft()`` trick, EXIF transpose, thumbnail
LANCZOS reducing_gap=2.0, WebP q85 encode) and writes the output file in the
child. No broker, no ledger, no threads, no bytes through pipes: what the
pipeline's overhead is measured against.

``tuned=True`` gives the pool children the same glibc malloc settings as the
pipeline's pool children (``workers.processes._child_init``), so the ratio
isolates the pipeline's overhead instead of crediting it for a malloc setting
any program could use; the untuned pool is reported too.

The pool lives in a helper process that starts its own session, as the worker
does (``start_worker(start_new_session=True)``). With the kernel's autogroup
scheduling (``/proc/sys/kernel/sched_autogroup_enabled``) CPU is shared fairly
between *sessions*, so on a machine that other people are loading, a pool in
the benchmark's own session would get a different share than the worker does.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from benchmarks import procstat
from pipeline.core.imaging import transform_image
from pipeline.core.names import output_name
from workers.processes import _child_init

Job = tuple[str, str, dict[str, Any], str]


def _work(job: Job) -> tuple[float, float]:
    """Read, transform, write one image; returns (seconds in transform_image, seconds in all)."""
    src, out_dir, plan_json, extension = job
    started = time.perf_counter()
    data = Path(src).read_bytes()
    output = transform_image(data, plan_json)
    Path(out_dir, output_name(src, extension)).write_bytes(output.data)
    return output.seconds, time.perf_counter() - started


RAW_CHUNK = 4


def _work_chunk(jobs: list[Job]) -> list[tuple[float, float]]:
    return [_work(job) for job in jobs]


def _chunks(jobs: list[Job]) -> list[list[Job]]:
    return [jobs[i : i + RAW_CHUNK] for i in range(0, len(jobs), RAW_CHUNK)]


def _serve(conn: Connection, processes: int, tuned: bool) -> None:
    """The helper: own session, a warm Pool, one run per message until ``None``."""
    os.setsid()
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(processes, initializer=_child_init if tuned else None) as pool:
        pool.map(time.sleep, [0.05] * processes, chunksize=1)  # every child started and imported
        conn.send(sorted(p.pid for p in pool._pool))  # type: ignore[attr-defined]
        while (jobs := conn.recv()) is not None:
            # Chunks, as the pipeline sends its pool (``ItemCost``): RAW_CHUNK images per call
            # pay the pipe once per ~4 images, and leave a tail of at most one chunk (~60 ms of
            # 1600x1200 work) on one child; a 50-image chunk would cost the baseline up to a second.
            conn.send([t for chunk in pool.imap_unordered(_work_chunk, _chunks(jobs), chunksize=1) for t in chunk])


class RawPool:
    def __init__(self, processes: int = 2, *, tuned: bool = True) -> None:
        self.tuned = tuned
        self._conn, child_conn = multiprocessing.Pipe()
        self.server = multiprocessing.get_context("fork").Process(target=_serve, args=(child_conn, processes, tuned))
        self.server.start()
        child_conn.close()
        if not self._conn.poll(60):
            self.close()
            raise RuntimeError("the raw pool did not start within 60 s")
        self.children: list[int] = self._conn.recv()

    def run(self, paths: list[Path], out_dir: Path, plan_json: dict[str, Any], extension: str) -> dict[str, Any]:
        out_dir.mkdir(parents=True, exist_ok=True)
        jobs = [(str(p), str(out_dir), plan_json, extension) for p in paths]
        pids = {f"child{i}": pid for i, pid in enumerate(self.children)}
        pids["pool_parent"] = self.server.pid or 0
        pids["bench_client"] = os.getpid()
        before = procstat.snapshot(pids)
        window = procstat.Window()
        started = time.perf_counter()
        self._conn.send(jobs)
        timings: list[tuple[float, float]] = self._conn.recv()
        wall = time.perf_counter() - started
        cpu = procstat.delta(before, procstat.snapshot(pids))
        load = window.close(sum(c["cpu_s"] for c in cpu.values()), wall)
        children = {k: v for k, v in cpu.items() if k.startswith("child")}
        n = len(paths)
        return {
            "images": n,
            "wall_s": round(wall, 4),
            "images_per_s": round(n / wall, 2),
            "transform_ms_mean": round(1000 * sum(t for t, _ in timings) / n, 3),
            "item_ms_mean": round(1000 * sum(t for _, t in timings) / n, 3),
            "cpu": cpu,
            "children_cpu_s": round(sum(c["cpu_s"] for c in children.values()), 3),
            "children_minflt_per_image": round(sum(c["minflt"] for c in children.values()) / n, 1),
            "load": load,
        }

    def close(self) -> None:
        """Graceful stop; if the helper is busy or stuck, SIGTERM it and its children."""
        with contextlib.suppress(OSError):
            self._conn.send(None)
        self.server.join(5)
        if self.server.is_alive():
            for pid in [*getattr(self, "children", []), self.server.pid]:
                if pid:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGTERM)
            self.server.join(5)
        self._conn.close()
