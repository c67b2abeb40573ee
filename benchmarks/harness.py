"""One private Redis and one warm worker for the whole benchmark, and timed jobs on them.

Started the way tests and `pipeline up` start them (``start_redis``,
``start_worker``, ``wait_ready``), bound to 127.0.0.1, and always stopped: the
caller uses this as a context manager, so Ctrl-C and errors stop the worker
(SIGTERM, then wait, then kill) and Redis.
"""

from __future__ import annotations

import os
import shutil
import socket
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from benchmarks import procstat
from pipeline.cluster import WorkerProcess, start_worker, wait_ready
from pipeline.config import Settings
from pipeline.core.document import FINAL_STATES
from pipeline.kinds import job_document
from pipeline.kinds.images import ImagesSpec
from pipeline.ledger import Ledger
from pipeline.ledger.connection import connect
from pipeline.ledger.keys import job_key
from pipeline.localredis import RedisServer, start_redis
from pipeline.producer import Producer


class Cluster:
    def __init__(
        self,
        workdir: Path,
        *,
        processes: int = 2,
        log_path: Path | None = None,
        cache_ttl_s: int = 0,
        env: dict[str, str] | None = None,
    ) -> None:
        self.workdir, self.processes, self.log_path = workdir, processes, log_path
        self.env = env or {}  # more PIPELINE_* settings for the worker (a variant under test)
        # Off unless asked: repeated runs of one data set must transform, not reuse
        # the first run's outputs (benchmarks/cache.py measures the cache itself).
        self.cache_ttl_s = cache_ttl_s
        self.redis: RedisServer | None = None
        self.worker: WorkerProcess | None = None
        self.producer: Producer | None = None
        self.ledger: Ledger | None = None

    # -- life cycle ---------------------------------------------------------------
    def __enter__(self) -> Cluster:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop()

    def start(self) -> None:
        home = self.workdir / "home"
        home.mkdir(parents=True, exist_ok=True)
        self.redis = start_redis(self.workdir / "redis", appendonly=False)
        url = self.redis.url
        if self.log_path is not None:
            self.log_path.write_bytes(b"")
        env = {"PIPELINE_PROCESSES": str(self.processes), "PIPELINE_HOME": str(home),
               "PIPELINE_CACHE_TTL_S": str(self.cache_ttl_s), **self.env}  # fmt: skip
        name = f"bench-{os.getpid()}@{socket.gethostname()}"
        self.worker = start_worker(url, name, env=env, log_path=self.log_path)
        client = connect(url)
        try:
            wait_ready(Ledger(client), [self.worker], timeout=60)
        finally:
            client.close()
        self.producer = Producer(Settings.load(redis_url=url, home=home), url)
        self.ledger = self.producer.ledger

    def stop(self) -> None:
        """Close the producer, warm-stop the worker (kill after 30 s), stop Redis: each even if one fails."""
        producer, worker, server = self.producer, self.worker, self.redis
        self.producer = self.worker = self.redis = None
        try:
            if producer is not None:
                producer.close()
        finally:
            try:
                if worker is not None:
                    worker.terminate()
                    if not worker.wait(30):
                        worker.kill()
            finally:
                if server is not None:
                    server.stop()

    # -- processes whose CPU we account ------------------------------------------
    def pids(self) -> dict[str, int]:
        """worker main, its forkserver, the pool children (grandchildren), redis-server, us."""
        assert self.worker is not None and self.redis is not None
        out = {"worker_main": self.worker.pid, "redis": self.redis.pid, "bench_client": os.getpid()}
        children = 0
        for child in procstat.children_of(self.worker.pid):
            grandchildren = procstat.children_of(child)
            out["forkserver" if grandchildren else f"worker_child{child}"] = child
            for pid in grandchildren:
                out[f"pool_child{children}"] = pid
                children += 1
        return out

    # -- one job ------------------------------------------------------------------
    def run_images(
        self,
        paths: list[Path],
        out_dir: Path,
        *,
        batch_size: int | None = None,
        poll_s: float = 0.01,
        fmt: str = "webp",
        ops: str = "thumbnail:256",
        timeout_s: float = 120.0,
        count: int | None = None,
    ) -> dict[str, Any]:
        """Submit one image job and time it from submit to the ledger's final state.

        ``paths`` may name folders; ``count`` is then the number of images they hold.
        """
        assert self.producer is not None and self.ledger is not None
        request = ImagesSpec(
            sources=[str(p) for p in paths], ops=ops, format=fmt, quality=85, output_dir=out_dir, batch_size=batch_size
        )
        pids = self.pids()
        before = procstat.snapshot(pids)
        client = self.ledger.client
        window = procstat.Window()
        started = time.perf_counter()
        job_id = self.producer.submit(request)
        submitted = time.perf_counter()
        key = job_key(job_id)
        deadline = time.monotonic() + timeout_s
        while client.hget(key, "state") not in FINAL_STATES:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"job {job_id} not final after {timeout_s:g} s: "
                    f"{job_document(self.ledger, job_id)}{self.log_tail()}"
                )
            time.sleep(poll_s)
        wall = time.perf_counter() - started
        after = procstat.snapshot(pids)
        cpu = procstat.delta(before, after)
        load = window.close(sum(v["cpu_s"] for v in cpu.values()), wall)
        doc = job_document(self.ledger, job_id)
        self.wait_finalized(job_id)  # the reduce step must not overlap the next run
        n = count or len(paths)
        pool_cpu = sum(v["cpu_s"] for k, v in cpu.items() if k.startswith("pool_child"))
        pool_flt = sum(v["minflt"] for k, v in cpu.items() if k.startswith("pool_child"))
        timings = doc["timings"]
        return {
            "job_id": job_id,
            "images": n,
            "ok": doc["images"]["ok"],
            "failed": doc["images"]["failed"],
            "state": doc["state"],
            "wall_s": round(wall, 4),
            "submit_s": round(submitted - started, 4),
            "ledger_elapsed_s": doc["elapsed_s"],
            "images_per_s": round(n / wall, 2),
            "stage_mean_ms": {s: timings[f"{s}_mean_ms"] for s in ("queue", "fetch", "transform", "store")},
            "cpu": cpu,
            "pool_children_cpu_s": round(pool_cpu, 3),
            "pool_children_minflt_per_image": round(pool_flt / n, 1),
            "load": load,
        }

    def log_tail(self, lines: int = 12) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        text = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        return f"\nworker log ({self.log_path}), last lines:\n  " + "\n  ".join(text)

    def wait_finalized(self, job_id: str, timeout: float = 30.0) -> None:
        assert self.ledger is not None
        deadline = time.monotonic() + timeout
        while not self.ledger.client.hget(job_key(job_id), "report"):
            if time.monotonic() > deadline:
                raise RuntimeError(f"job {job_id} was not finalized within {timeout:g} s{self.log_tail()}")
            time.sleep(0.01)

    def latency(self, path: Path, out_root: Path, samples: int) -> dict[str, Any]:
        """One-image jobs, one at a time: submit -> final state (polled every 1 ms)."""
        walls, ledger_side, stages = [], [], []
        for index in range(samples):
            out_dir = out_root / f"lat-{index}"
            result = self.run_images([path], out_dir, poll_s=0.001)
            if result["ok"] != 1:
                raise RuntimeError(f"latency job failed: {result}")
            walls.append(result["wall_s"])
            ledger_side.append(result["ledger_elapsed_s"])
            stages.append(result["stage_mean_ms"])
            shutil.rmtree(out_dir, ignore_errors=True)
        return {"walls_s": walls, "ledger_elapsed_s": ledger_side, "stages_ms": stages}
