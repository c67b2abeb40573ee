"""The worker's process pool for CPU work, which survives a dying child.

Why processes: Pillow releases the GIL for much of its work, but arbitrary op
chains do not, and a decoder crash in a child must not take the worker down.

Why ``forkserver``: the worker process already runs threads (Celery's, the
event loop's); forking it could copy a held lock into the child. Children come
from a clean server process instead and preload the imaging module once.

When a child dies (segfault, OOM kill) ``ProcessPoolExecutor`` marks the whole
pool broken; ``ProcessPool`` then builds a fresh one (once per breakage, however
many threads notice) and callers resubmit, with a capped number of attempts.
A resubmitted call runs ``isolated``: alone in a one-off child, so a crash there
is that call's own and a poison item cannot use up an innocent neighbour's attempts.

A child that is stuck (a blocking read, a decoder in an endless loop) is killed
at the batch deadline (``abandon``): its pool is rebuilt like a broken one, so
the slot serves the next items instead of being lost for ever.

Test hook (off unless ``PIPELINE_TEST_CRASH_DIR`` is set): a child kills itself
with SIGKILL when the bytes it is given contain ``CRASH_ALWAYS`` (every time) or
``CRASH_ONCE`` (the first time only, remembered as a file in that directory);
each crash appends a line to ``crashes.log`` there; it blocks for ever on
``HANG``. The fault-injection tests use it because no real input reliably
segfaults (or wedges) Pillow.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import hashlib
import multiprocessing
import os
import signal
import threading
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from pipeline.outputs import open_log
from workers import result_cache
from workers.orphans import die_with_parent

# glibc malloc: keep big image buffers on the heap instead of mmap/munmap per
# image. Measured on a 2-core VM (Python 3.11, Pillow): ~10 % less CPU per
# 1600x1200 image in one process, and +42 % throughput on 640x480 thumbnails in
# Celery worker children, which page-faulted ~750 times per image without it and
# not at all with it.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 128 * 2**20
TRIM_THRESHOLD = 256 * 2**20


def tune_malloc() -> None:
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
        libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    except (OSError, AttributeError):  # not glibc: nothing to tune
        pass


TRIM_AFTER_BYTES = 16 * 2**20  # bodies this big just freed: hand the memory back (malloc_trim)


def trim_memory() -> None:
    """Return the heap's free memory to the system (glibc ``malloc_trim``; a no-op elsewhere).

    After big pages, freed memory otherwise stays with the process (1 GB held by a
    worker once a crawl met 30 MB pages): the next small pages would never reuse it all.
    Reference cycles that still hold freed bodies are collected first: with the
    worker's raised collector thresholds (``workers.heap``) they would otherwise wait
    (measured: a worker main's peak 229 MiB over 24 pages of 8 MB, where the
    memory test allows 120).
    """
    gc.collect()  # all generations: cheap, as the start-up heap is frozen (``workers.heap``)
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


CRASH_ALWAYS = b"PIPELINE-TEST-CRASH-ALWAYS"
CRASH_ONCE = b"PIPELINE-TEST-CRASH-ONCE"
HANG = b"PIPELINE-TEST-HANG"  # the child blocks (as in an open() of a FIFO or a hung NFS read)
_crash_dir: str | None = None


def _child_init(crash_dir: str | None = None, cache: result_cache.CacheSettings | None = None) -> None:
    global _crash_dir
    die_with_parent()  # the forkserver's own setting is not inherited across fork
    tune_malloc()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    _crash_dir = crash_dir
    result_cache.install(cache)


def _with_crash_hook(fn: Callable[..., Any], *args: Any) -> Any:
    """The test hook (see the module docstring); only ever submitted when a crash dir is set."""
    crash_if_marked(next((a for a in args if isinstance(a, bytes)), b""))
    return fn(*args)


def crash_if_marked(data: bytes) -> None:
    """In a pool child with the test hook on: die (or hang) on marked bytes (a no-op otherwise)."""
    if _crash_dir and HANG in data:
        threading.Event().wait()  # for ever: only the pool's deadline kill ends it
    if _crash_dir and (CRASH_ALWAYS in data or CRASH_ONCE in data):
        digest = hashlib.sha256(data).hexdigest()[:16]
        first = True
        if CRASH_ONCE in data:
            try:
                os.close(os.open(os.path.join(_crash_dir, digest + ".crashed"), os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            except FileExistsError:
                first = False
        if first:
            log = open_log(os.path.join(_crash_dir, "crashes.log"), 0o644)
            try:
                os.write(log, (digest + "\n").encode())
            finally:
                os.close(log)
            os.kill(os.getpid(), signal.SIGKILL)


class ProcessPool:
    """A ``ProcessPoolExecutor`` plus slot numbering and rebuild-on-break."""

    def __init__(
        self,
        size: int,
        preload: tuple[str, ...] = ("workers.forkserver_guard", "pipeline.core.imaging", "workers.child"),
        crash_dir: str | None = None,
        cache: result_cache.CacheSettings | None = None,
    ) -> None:
        self.size = size
        self.crash_dir = crash_dir
        self.cache = cache  # the result cache the children use (None: off)
        self._context = multiprocessing.get_context("forkserver")
        self._context.set_forkserver_preload(list(preload))
        self._lock = threading.Lock()
        self._slots: dict[int, int] = {}
        self._one_offs: dict[Future[Any], ProcessPoolExecutor] = {}
        self.generation = 0
        self.rebuilds = 0
        self._executor = self._new_executor()

    def _new_executor(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            self.size, mp_context=self._context, initializer=_child_init, initargs=(self.crash_dir, self.cache)
        )

    def _call(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> tuple[Any, ...]:
        return (_with_crash_hook, fn, *args) if self.crash_dir else (fn, *args)

    def warm_up(self) -> None:
        """Start every child now, so the first batch does not pay for it, and number them."""
        futures = [self._executor.submit(os.getpid) for _ in range(self.size * 2)]
        for future in futures:
            future.result()
        for pid in self._live_pids():
            self.slot_of(pid)

    def _live_pids(self) -> list[int]:
        # The executor's own table of children; there is no public accessor.
        # Copied at once: the executor's manager thread mutates it while a pool is rebuilt.
        processes = dict(getattr(self._executor, "_processes", None) or {})
        return sorted(processes)

    def submit(self, fn: Callable[..., Any], *args: Any) -> tuple[int, Future[Any]]:
        """Submit; returns the pool generation with the future (for ``recover``)."""
        call = self._call(fn, args)
        for _ in range(3):
            with self._lock:
                generation, executor = self.generation, self._executor
            try:
                return generation, executor.submit(*call)
            except (BrokenProcessPool, RuntimeError):
                # It broke (or was replaced and shut down) since we looked: a
                # neighbour's crash must not fail this call; use the next pool.
                self.recover(generation)
        with self._lock:
            generation, executor = self.generation, self._executor
        return generation, executor.submit(*call)

    def isolated(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        """Run one call alone in a one-off child: if that child dies, the call itself killed it."""
        executor = ProcessPoolExecutor(1, mp_context=self._context, initializer=_child_init,
                                       initargs=(self.crash_dir, self.cache))  # fmt: skip
        future = executor.submit(*self._call(fn, args))
        with self._lock:
            self._one_offs[future] = executor
        future.add_done_callback(self._one_off_done)
        return future

    def _one_off_done(self, future: Future[Any]) -> None:
        with self._lock:
            executor = self._one_offs.pop(future, None)
        if executor is not None:
            executor.shutdown(wait=False)

    def abandon(self, futures: dict[Future[Any], int | None]) -> int:
        """Kill the children still running ``futures`` (future -> pool generation, None for a one-off).

        Called at a batch's deadline: a call that has not returned by then is
        stuck, and its child would hold a pool slot for ever. A pool child's
        whole pool is replaced (its neighbours' calls see a broken pool and are
        retried alone, as after a crash); a one-off child is killed alone.
        Returns how many processes were killed.
        """
        killed = 0
        for future, generation in futures.items():
            if future.done():
                continue
            if generation is None:
                with self._lock:
                    executor = self._one_offs.get(future)
                killed += _kill_children(executor) if executor is not None else 0
                continue
            with self._lock:
                current = self._executor if generation == self.generation else None
            if current is not None:
                killed += _kill_children(current)
                self.recover(generation)
        return killed

    def recover(self, generation: int) -> None:
        """Replace the pool that broke in ``generation`` (no-op if already replaced)."""
        with self._lock:
            if generation != self.generation:
                return
            broken = self._executor
            self._executor = self._new_executor()
            self._slots.clear()
            self.generation += 1
            self.rebuilds += 1
        broken.shutdown(wait=False, cancel_futures=True)

    def slot_of(self, pid: int) -> int:
        """A stable small number for the child with ``pid`` (0 .. size-1)."""
        with self._lock:
            slot = self._slots.get(pid)
            if slot is None:
                used = set(self._slots.values())
                slot = next((s for s in range(self.size) if s not in used), len(self._slots) % self.size)
                self._slots[pid] = slot
            return slot

    def pids(self) -> list[int | None]:
        """Child pid per slot (None for a slot whose child has not started yet)."""
        for pid in self._live_pids():
            self.slot_of(pid)
        with self._lock:
            by_slot: list[int | None] = [None] * self.size
            for pid, slot in self._slots.items():
                if slot < self.size:
                    by_slot[slot] = pid
            return by_slot

    def shutdown(self) -> None:
        with self._lock:
            executor = self._executor
        executor.shutdown(wait=True, cancel_futures=True)


def _kill_children(executor: ProcessPoolExecutor) -> int:
    """SIGKILL every child of ``executor`` (its table of processes has no public accessor)."""
    processes = dict(getattr(executor, "_processes", None) or {})
    for process in processes.values():
        with contextlib.suppress(OSError, ValueError):
            process.kill()
    return len(processes)
