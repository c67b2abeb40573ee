"""Which worker holds which in-flight items, so a dead worker's items come back in seconds.

Every item a pump sends holds a lease (``pl:job:ID:leases``) until its result
is recorded; a lease that runs out (``PIPELINE_VISIBILITY_TIMEOUT_S``) is sent
again. That is the last resort. When a task starts, its worker writes that it
holds the task's items; when the task ends, it forgets them. The workers'
tickers look at the holders of every active job and, for each one whose
heartbeat stopped (``workers.takeover``), expire the leases of what it held,
so the next pump re-sends them within seconds. Keys, beside the job's others:

    pl:job:ID:held     HASH   item id -> owner (``NODE|INSTANCE``) running it now
    pl:job:ID:owners   SET    every owner that held items of the job (what a sweep reads)

Both expire ``ttl_s`` after the last task started, so a finished job leaves
nothing behind for long. Counting stays exact because the ledger keeps the
first result per item: a frozen worker that wakes up and records late only
adds to ``ledger.duplicates``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import redis

from pipeline.ledger.connection import translated
from pipeline.ledger.keys import job_key, live_key
from pipeline.ledger.scripts import lua


@translated
class Holdings:
    """Typed access to the held-items keys; ``client`` must decode responses to str."""

    def __init__(self, client: redis.Redis) -> None:
        self.client: Any = client
        self._hold = client.register_script(lua("hold.lua"))
        self._release = client.register_script(lua("release.lua"))
        self._takeover = client.register_script(lua("takeover.lua"))

    def hold(self, job_id: str, owner: str, item_ids: Sequence[str], ttl_s: int) -> None:
        """``owner`` now runs these items (overwriting whoever ran them before)."""
        if item_ids:
            keys = [job_key(job_id, "held"), job_key(job_id, "owners")]
            self._hold(keys=keys, args=[owner, max(1, ttl_s), *item_ids])

    def release(self, job_id: str, owner: str, item_ids: Sequence[str]) -> int:
        """``owner`` is done with these items; returns how many were still its own."""
        if not item_ids:
            return 0
        return int(self._release(keys=[job_key(job_id, "held")], args=[owner, *item_ids]))

    def owners(self, job_ids: Iterable[str]) -> dict[str, set[str]]:
        """Every owner that holds (or held) items of each job, in one round trip."""
        chosen = list(job_ids)
        if not chosen:
            return {}
        pipe = self.client.pipeline(transaction=False)
        for job_id in chosen:
            pipe.smembers(job_key(job_id, "owners"))
        return {job_id: {str(o) for o in found} for job_id, found in zip(chosen, pipe.execute(), strict=True)}

    def holder(self, job_id: str, item_id: str) -> str | None:
        found = self.client.hget(job_key(job_id, "held"), item_id)
        return None if found is None else str(found)

    def held_by(self, job_id: str) -> dict[str, str]:
        """Item id -> owner, for every item of the job held now."""
        return {str(k): str(v) for k, v in self.client.hgetall(job_key(job_id, "held")).items()}

    def take_over(self, job_id: str, dead: Iterable[str]) -> int:
        """Expire the leases of the items the ``dead`` owners held; returns how many are to be re-sent."""
        gone = sorted(set(dead))
        if not gone:
            return 0
        keys = [job_key(job_id, "held"), job_key(job_id, "owners"), job_key(job_id, "leases")]
        return int(self._takeover(keys=keys, args=gone))

    def live_owners(self, owners: Iterable[str]) -> set[str]:
        """The owners (``NODE|INSTANCE``) whose process still beats: its ``pl:live:NODE`` names that instance."""
        chosen = sorted(set(owners))
        if not chosen:
            return set()
        pipe = self.client.pipeline(transaction=False)
        for owner in chosen:
            pipe.get(live_key(owner.rsplit("|", 1)[0]))
        found = pipe.execute()
        return {owner for owner, instance in zip(chosen, found, strict=True)
                if instance is not None and owner.rsplit("|", 1)[1] == instance}  # fmt: skip


def owner_of(node: str, instance: str) -> str:
    """How a worker process signs the items it holds: its node name and this run's instance token."""
    return f"{node}|{instance}"
