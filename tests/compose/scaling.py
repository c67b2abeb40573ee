"""Throughput of the compose stack with 1 and with 3 worker replicas, on the test's private engine.

    .venv/bin/python -m tests.compose.scaling [--images 400] [--repeat 3]

Not part of `make test` (a measurement, not a check). It brings the stack up
as tests/compose/test_compose_engine.py does, then alternates `--scale worker=1`
and `--scale worker=3`, each time running the same image job (400 photo-like
640x480 JPEGs -> thumbnail:256 webp, a new --quality each run so the result
cache never answers) and reading ``items_per_s`` from its result document.
Prints each run and the medians as JSON on stdout.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.data import photo_like
from tests.compose.engine import Engine, WheelServer, require_tools, standin_tarball, wheelhouse
from tests.compose.real_stack import ComposeStack

BASE = {"redis": 1, "scheduler": 2, "flower": 1}


def run_job(stack: ComposeStack, quality: int) -> dict[str, Any]:
    doc: dict[str, Any] = stack.exec_json("scheduler", "pipeline", "submit", "images", "/data/inputs/bench",
                                          "--ops", "thumbnail:256", "--format", "webp", "--quality", str(quality),
                                          "--batch-size", "20", "--wait", "--json", "--timeout", "600")  # fmt: skip
    assert doc["state"] == "succeeded" and doc["cache_hits"] == 0, doc
    return doc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    require_tools()
    root = Path(tempfile.mkdtemp(prefix="pl-engine-", dir="/tmp"))
    engine = Engine.start(root)
    runs: list[dict[str, Any]] = []
    try:
        engine.import_standins(standin_tarball())
        with WheelServer(wheelhouse()) as wheels:
            stack = ComposeStack.prepare(engine, root / "project", wheels.url)
            bench = Path(stack.env["INPUTS_DIR"]) / "bench"
            bench.mkdir(parents=True)
            for index in range(args.images):
                photo_like((640, 480), index).save(bench / f"p{index:04d}.jpg", quality=90)
            stack.run("up", "-d", "--build", "--scale", "worker=3", timeout=900)
        try:
            quality = 60
            for workers in [1, 3] * args.repeat:
                stack.run("up", "-d", "--no-build", "--scale", f"worker={workers}")
                stack.wait_healthy({**BASE, "worker": workers}, timeout=240)
                time.sleep(5)  # let the start-up CPU of new replicas settle
                quality += 1
                doc = run_job(stack, quality)
                runs.append({"workers": workers, "items_per_s": doc["items_per_s"], "elapsed_s": doc["elapsed_s"]})
                print(json.dumps(runs[-1]), file=sys.stderr)
        finally:
            stack.run("down", "--volumes", "--timeout", "10", check=False)
    finally:
        engine.stop()
        shutil.rmtree(root, ignore_errors=True)
    medians = {n: statistics.median(r["items_per_s"] for r in runs if r["workers"] == n) for n in (1, 3)}
    print(json.dumps({"runs": runs, "median_items_per_s": medians, "ratio_3_to_1": round(medians[3] / medians[1], 2),
                      "compose": stack.command}, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
