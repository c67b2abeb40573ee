"""Schedule definitions and their state in Redis: what the CLI and every scheduler replica share.

The CLI writes definitions (add, remove, pause, resume) and reads state;
replicas read definitions whenever the revision counter moves. Nothing here
fires anything: claiming fire times is ``claims.py``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import redis

from pipeline.ledger.connection import translated
from pipeline.scheduler import keys
from pipeline.scheduler.definition import Schedule
from pipeline.scheduler.errors import ScheduleExists, ScheduleInvalid, ScheduleNotFound


def _int(value: str | None) -> int | None:
    return int(float(value)) if value not in (None, "") else None


@dataclass(frozen=True)
class ScheduleState:
    """Where a schedule stands: the last claimed fire time, its last job, what happened last."""

    cursor_ms: int = 0
    last_job: str | None = None
    last_fire_ms: int | None = None
    last_run_at_ms: int | None = None
    last_outcome: str | None = None  # submitted, skipped, missed, failed, run-now, waiting
    last_detail: str | None = None
    inflight: str | None = None  # a job claimed and being submitted
    waiting: str | None = None  # a fire waiting for the previous job (overlap=queue)
    counts: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_hash(cls, raw: dict[str, str]) -> ScheduleState:
        return cls(
            cursor_ms=_int(raw.get("cursor")) or 0, last_job=raw.get("last_job") or None,
            last_fire_ms=_int(raw.get("last_fire")), last_run_at_ms=_int(raw.get("last_run_at")),
            last_outcome=raw.get("last_outcome"), last_detail=raw.get("last_detail") or None,
            inflight=raw.get("inflight") or None, waiting=raw.get("waiting") or None,
            counts={k[2:]: int(v) for k, v in raw.items() if k.startswith("n:")},
        )  # fmt: skip


@dataclass(frozen=True)
class Fire:
    """One entry of a schedule's history: a fire time (or run-now) and what it became."""

    fire_ms: int
    outcome: str
    job: str | None
    detail: str
    at_ms: int

    @classmethod
    def loads(cls, text: str) -> Fire:
        doc = json.loads(text)
        return cls(int(doc["fire_ms"]), doc["outcome"], doc.get("job") or None, doc.get("detail", ""),
                   int(doc.get("at", 0)))  # fmt: skip


def now_ms(now: float | None = None) -> int:
    return round((time.time() if now is None else now) * 1000)


@translated
class ScheduleStore:
    """Typed access to schedules in Redis; ``client`` must decode responses to str."""

    def __init__(self, client: redis.Redis) -> None:
        self.client: Any = client
        self._add = client.register_script(keys.lua("add.lua"))
        self._remove = client.register_script(keys.lua("remove.lua"))
        self._pause = client.register_script(keys.lua("pause.lua"))
        self._run_now = client.register_script(keys.lua("run_now.lua", with_common=True))

    # -- changes (the CLI) -------------------------------------------------------
    def add(self, schedule: Schedule, *, replace: bool = False, now: float | None = None) -> None:
        name = schedule.name
        script_keys = [keys.DEFS, keys.PAUSED, keys.state_key(name), keys.history_key(name), keys.REV]
        if not self._add(keys=script_keys, args=[name, schedule.dumps(), now_ms(now), int(replace)]):
            raise ScheduleExists(name)

    def remove(self, name: str) -> None:
        script_keys = [keys.DEFS, keys.PAUSED, keys.state_key(name), keys.history_key(name), keys.PENDING, keys.REV]
        if not self._remove(keys=script_keys, args=[name]):
            raise ScheduleNotFound(name)

    def pause(self, name: str) -> bool:
        """True if this paused it (False: it already was)."""
        return self._toggle(name, "pause", None)

    def resume(self, name: str, now: float | None = None) -> bool:
        """True if this resumed it; fire times that passed while it was paused are not caught up."""
        return self._toggle(name, "resume", now)

    def _toggle(self, name: str, mode: str, now: float | None) -> bool:
        changed = int(self._pause(keys=[keys.DEFS, keys.PAUSED, keys.state_key(name), keys.REV],
                                  args=[name, mode, now_ms(now)]))  # fmt: skip
        if changed < 0:
            raise ScheduleNotFound(name)
        return changed == 1

    def link_run_now(self, name: str, job_id: str, now: float | None = None) -> None:
        script_keys = [keys.DEFS, keys.state_key(name), keys.history_key(name)]
        if not self._run_now(keys=script_keys, args=[name, job_id, now_ms(now), keys.HISTORY_CAP]):
            raise ScheduleNotFound(name)

    # -- readers -------------------------------------------------------------------
    def revision(self) -> str:
        return str(self.client.get(keys.REV) or "0")

    def get(self, name: str) -> Schedule:
        text = self.client.hget(keys.DEFS, name)
        if text is None:
            raise ScheduleNotFound(name)
        return Schedule.loads(text, name)

    def all(self) -> dict[str, Schedule]:
        """Every definition that loads; see ``invalid`` for the others (never fired, never fatal)."""
        return self.read()[0]

    def read(self) -> tuple[dict[str, Schedule], dict[str, ScheduleInvalid]]:
        """Definitions that load, and why the others do not."""
        valid: dict[str, Schedule] = {}
        invalid: dict[str, ScheduleInvalid] = {}
        for name, text in sorted(self.client.hgetall(keys.DEFS).items()):
            try:
                valid[name] = Schedule.loads(text, name)
            except ScheduleInvalid as exc:
                invalid[name] = exc
        return valid, invalid

    def paused(self) -> set[str]:
        return set(self.client.smembers(keys.PAUSED))

    def state(self, name: str) -> ScheduleState:
        return ScheduleState.from_hash(self.client.hgetall(keys.state_key(name)))

    def history(self, name: str, limit: int = keys.HISTORY_CAP) -> list[Fire]:
        """Oldest first."""
        return [Fire.loads(entry) for entry in self.client.zrange(keys.history_key(name), -limit, -1)]

    def live_schedulers(self) -> list[dict[str, Any]]:
        """Heartbeats of the running scheduler replicas."""
        found = []
        for key in sorted(self.client.scan_iter(match=keys.ALIVE + "*", count=100)):
            raw = self.client.get(key)
            if raw:
                found.append(json.loads(raw))
        return found
