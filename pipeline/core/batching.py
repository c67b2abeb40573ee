"""How many local-file items go in one task: enough to pay for the task, few enough to share.

A task costs a worker a few milliseconds whatever it holds (a Celery message,
the job's spec, the output names and the ledger write: a handful of Redis
round trips). Twenty photos take ~100 ms or more, so the default of 20 hides
that; twenty 16x16 PNGs take ~3 ms, and the task's own cost would then be
most of the work. So, unless the user fixed the batch size, an image job's
local files are sent in batches of about ``BATCH_S`` of measured work per
item (read + transform + write, from the job's own stats), never fewer than
the default. The job's window grows with it (``window_for``), so a few batches
are always in flight: still about the same few tenths of a second of work,
which is what the window bounds for the jobs queued behind.
"""

from __future__ import annotations

from collections.abc import Mapping

# Measured work per batch to aim for. Item times are wall-clock in the child, so on
# busy cores they read high and batches come out smaller than aimed: 0.1 s gave
# 20,000 tiny items ~150-190 us of worker CPU per item, 0.3 s ~110-120 (half the
# ledger calls). A quarter second of work still leaves a job many batches to share.
BATCH_S = 0.25
MAX_BATCH = 500  # one ledger write of 500 results holds Redis for a few ms: no more
MIN_SAMPLE = 40  # items recorded before the job's own figures are trusted
BATCHES_IN_FLIGHT = 4
STAGES = ("fetch", "transform", "store")
STAT_FIELDS = ("ok", "failed", *(f"t:{stage}" for stage in STAGES))  # what ``item_seconds`` reads


def item_seconds(stats: Mapping[str, str | None]) -> float | None:
    """Mean measured seconds per recorded item (``t:STAGE`` sums over ``ok + failed``), or None."""
    done = sum(int(stats.get(key) or 0) for key in ("ok", "failed"))
    if done < MIN_SAMPLE:
        return None
    return sum(float(stats.get(f"t:{stage}") or 0.0) for stage in STAGES) / done


def adaptive_batch(base: int, stats: Mapping[str, str | None]) -> int:
    """Batch size for a job's local files: ``base`` until measured, then ~``BATCH_S`` of work."""
    seconds = item_seconds(stats)
    if seconds is None:
        return base
    return max(base, min(MAX_BATCH, int(BATCH_S / max(seconds, 1e-6))))


def window_for(window: int, batch: int) -> int:
    """The job window, raised so ``BATCHES_IN_FLIGHT`` batches of ``batch`` fit in it."""
    return max(window, BATCHES_IN_FLIGHT * batch)
