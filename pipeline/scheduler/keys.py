"""Where schedules live in Redis, and the Lua that changes them.

    pl:sched:defs            HASH    name -> definition JSON (shared by every scheduler replica)
    pl:sched:paused          SET     names of paused schedules
    pl:sched:rev             STRING  bumped by every change; replicas re-read definitions when it moves
    pl:sched:state:NAME      HASH    cursor (last claimed fire time, epoch ms), inflight, waiting,
                                     last_job, last_fire, last_run_at, last_outcome, last_detail, n:OUTCOME
    pl:sched:history:NAME    ZSET    fire ms -> {fire_ms, outcome, job, detail, at}, the latest HISTORY_CAP
    pl:sched:pending         HASH    "NAME@FIRE_MS" -> {owner, job[, after]}: claimed, not yet submitted
    pl:sched:alive:OWNER     STRING  a running scheduler's heartbeat (expires when it stops beating)

Every change that must be exact across replicas is one Lua script in this
package (``common.lua`` is prepended to those that record outcomes).
"""

from __future__ import annotations

from importlib import resources

from pipeline.ledger.keys import SCHEDULES_PREFIX

SCHED = SCHEDULES_PREFIX
DEFS = SCHED + "defs"
PAUSED = SCHED + "paused"
REV = SCHED + "rev"
PENDING = SCHED + "pending"
ALIVE = SCHED + "alive:"
HISTORY_CAP = 500


def state_key(name: str) -> str:
    return f"{SCHED}state:{name}"


def history_key(name: str) -> str:
    return f"{SCHED}history:{name}"


def pending_field(name: str, fire_ms: int) -> str:
    return f"{name}@{fire_ms}"


def lua(name: str, *, with_common: bool = False) -> str:
    package = resources.files("pipeline.scheduler")
    text = package.joinpath(name).read_text()
    return package.joinpath("common.lua").read_text() + text if with_common else text
