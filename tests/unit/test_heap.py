"""The worker's collector settings (workers.heap), each checked in a fresh interpreter: freezing is per process."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def _run(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_settle_freezes_what_start_up_built_and_raises_the_thresholds() -> None:
    out = _run("""
        import gc
        from workers import heap
        frozen = heap.settle()
        print(frozen > 1000, frozen == gc.get_freeze_count(), gc.get_threshold() == heap.THRESHOLDS)
    """)
    assert out == "True True True"


def test_cycles_made_after_settling_are_still_collected_without_being_asked() -> None:
    out = _run("""
        import weakref
        from workers import heap
        heap.settle()
        class Node: pass
        a, b = Node(), Node()
        a.other, b.other = b, a
        alive = weakref.ref(a)
        del a, b
        kept = [[None] for _ in range(50_000)]  # a worker's ordinary allocations: a young collection runs
        print(alive() is None)
    """)
    assert out == "True"
