"""Exactly one outcome per fire time, however many scheduler replicas run.

A replica that reaches a fire time calls ``claim``: one Lua call that moves
the schedule's cursor past that time (or finds another replica already did),
and decides what the fire becomes -- missed, skipped, waiting, or to be
submitted by this replica. A fire to be submitted is first written to a
pending hash under the replica's owner id with a pre-generated job id; the
replica submits the job with that id, then ``commit`` records the outcome and
drops the pending entry.

If the replica dies in between (SIGKILL, a lost machine), the pending entry
outlives it. Every replica's sweep adopts entries whose owner's heartbeat has
expired: if the ledger already holds the job, only the outcome is recorded;
otherwise the job is submitted under the same id. So a crash neither loses a
fire time nor submits it twice. (The one case left: an owner that is alive but
silent longer than its heartbeat TTL while submitting; then both submit the
same job id and the ledger's per-job item set enqueues each item once.)
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import redis

from pipeline.core.document import FINAL_STATES
from pipeline.ledger.connection import translated
from pipeline.ledger.keys import job_key
from pipeline.scheduler import keys
from pipeline.scheduler.store import now_ms

FINALS = " ".join(sorted(FINAL_STATES))
JOB_PREFIX = job_key("")


@dataclass(frozen=True)
class PendingFire:
    """A claimed fire time not yet turned into a job; ``entry`` is the exact stored JSON (for compare-and-set)."""

    name: str
    fire_ms: int
    owner: str  # "" while it waits for the previous job
    job_id: str
    after: str | None
    entry: str

    @property
    def field(self) -> str:
        return keys.pending_field(self.name, self.fire_ms)

    @classmethod
    def parse(cls, field: str, entry: str) -> PendingFire:
        name, _, fire = field.rpartition("@")
        doc = json.loads(entry)
        return cls(name, int(fire), doc.get("owner", ""), doc["job"], doc.get("after") or None, entry)


@dataclass(frozen=True)
class Claim:
    status: str  # gone, paused, taken, missed, skipped, deferred, submit
    previous_ms: int  # the cursor before this claim
    detail: str = ""
    pending: PendingFire | None = None  # set when status == "submit"


def owner_id(name: str | None = None) -> str:
    return name or f"scheduler-{os.getpid()}@{socket.gethostname()}"


@translated
class Claims:
    """The replica side of the scheduler's Redis state: claim, adopt, commit, heartbeat."""

    def __init__(self, client: redis.Redis) -> None:
        self.client: Any = client
        self._claim = client.register_script(keys.lua("claim.lua", with_common=True))
        self._takeover = client.register_script(keys.lua("takeover.lua", with_common=True))
        self._commit = client.register_script(keys.lua("commit.lua", with_common=True))

    def claim(self, name: str, fire_ms: int, *, owner: str, job_id: str, overlap: str, late: bool,
              now: float | None = None) -> Claim:  # fmt: skip
        field = keys.pending_field(name, fire_ms)
        script_keys = [keys.DEFS, keys.PAUSED, keys.state_key(name), keys.PENDING, keys.history_key(name)]
        args: list[str | int] = [name, fire_ms, field, owner, job_id, overlap, "1" if late else "0", now_ms(now),
                                 keys.HISTORY_CAP, JOB_PREFIX, FINALS]  # fmt: skip
        status, previous, detail = self._claim(keys=script_keys, args=args)
        pending = PendingFire.parse(field, detail) if status == "submit" else None
        return Claim(status, int(float(previous)), "" if pending else detail, pending)

    def pending(self) -> list[PendingFire]:
        return [PendingFire.parse(f, e) for f, e in sorted(self.client.hgetall(keys.PENDING).items())]

    def adopt(self, fire: PendingFire, owner: str) -> PendingFire | None:
        """Take over ``fire`` (orphaned, or waiting and now free to go); None if not (yet) possible."""
        entry = json.dumps({"owner": owner, "job": fire.job_id}, separators=(",", ":"))
        script_keys = [keys.PENDING, keys.state_key(fire.name), keys.PAUSED]
        args = [fire.field, fire.entry, entry, fire.job_id, JOB_PREFIX, FINALS, fire.name]
        if not self._takeover(keys=script_keys, args=args):
            return None
        return PendingFire(fire.name, fire.fire_ms, owner, fire.job_id, None, entry)

    def commit(self, fire: PendingFire, outcome: str, detail: str = "", now: float | None = None) -> bool:
        """Record ``submitted`` or ``failed``; False if the entry was no longer ours to commit."""
        script_keys = [keys.DEFS, keys.state_key(fire.name), keys.PENDING, keys.history_key(fire.name)]
        args: list[str | int] = [fire.name, fire.field, fire.entry, fire.fire_ms, outcome, fire.job_id, detail,
                                 now_ms(now), keys.HISTORY_CAP]  # fmt: skip
        return bool(self._commit(keys=script_keys, args=args))

    # -- liveness ----------------------------------------------------------------------
    def beat(self, owner: str, info: dict[str, Any], ttl_s: float) -> None:
        doc = {"name": owner, "host": socket.gethostname(), "pid": os.getpid(), "seen_at": time.time(), **info}
        self.client.set(keys.ALIVE + owner, json.dumps(doc), px=max(1, round(ttl_s * 1000)))

    def stop_beating(self, owner: str) -> None:
        self.client.delete(keys.ALIVE + owner)

    def alive(self, owners: Iterable[str]) -> set[str]:
        names = sorted(set(owners) - {""})
        if not names:
            return set()
        pipe = self.client.pipeline()
        for name in names:
            pipe.exists(keys.ALIVE + name)
        return {name for name, found in zip(names, pipe.execute(), strict=True) if found}
