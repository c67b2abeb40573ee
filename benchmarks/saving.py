"""The tail every standalone benchmark shares: time the run, record the command, write JSON, print."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from typing import Any

from benchmarks import data

Run = Callable[[int, bool, Callable[[str], None]], dict[str, Any]]
Report = Callable[[dict[str, Any], Any], None]


def run_and_save(
    name: str,
    run: Run,
    report: Report,
    repeat: int,
    quick: bool,
    console: Any,
    *,
    uses_repeat: bool = True,
    finish: Callable[[dict[str, Any]], str] | None = None,
) -> int:
    """Run, then write ``results/<name>.json`` and print the report; ``finish`` may add to the results
    (e.g. plots) and returns text for the closing line."""
    from benchmarks.machine import machine

    started = time.time()
    described = machine()
    results = run(repeat, quick, console.log)
    results["machine"] = {**described, "loadavg_end": os.getloadavg()}
    results["command"] = (
        f"python -m benchmarks {name}" + (" --quick" if quick else "") + (f" --repeat {repeat}" if uses_repeat else "")
    )
    results["duration_s"] = round(time.time() - started, 1)
    data.RESULTS.mkdir(parents=True, exist_ok=True)
    extra = finish(results) if finish else ""
    path = data.RESULTS / f"{name}.json"
    path.write_text(json.dumps(results, indent=2) + "\n")
    report(results, console)
    console.print(f"wrote {path}{extra} ({results['duration_s']:.0f} s)")
    return 0
