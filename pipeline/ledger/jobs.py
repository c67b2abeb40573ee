"""The job ledger: job records, expected items, results, aggregates, and the frontier of items to send.

Key names are in ``pipeline.ledger.keys``. Every mutation that must be exact is
one Lua script (``pipeline/ledger/lua``), so it is atomic across all workers
and a retried batch is a no-op. Connection errors leave every method as
``BrokerUnavailable`` (``translated``). What concerns the cluster rather than
a job (workers, queues, memory, caches) is ``ClusterLedger`` in
``pipeline.ledger.cluster``, which ``Ledger`` inherits.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import redis

from pipeline.core.aggregate import ItemResult, Totals
from pipeline.core.document import JobMeta
from pipeline.core.errors import JobNotFound, UsageError
from pipeline.ledger.cluster import ClusterLedger
from pipeline.ledger.connection import translated
from pipeline.ledger.keys import ACTIVE_JOBS, CRAWL_DEPTH_PARTS, JOBS, OUTPUT_DIRS, job_key, job_keys
from pipeline.ledger.scripts import lua


@dataclass(frozen=True)
class Claimed:
    """An item handed out by ``dispatch``: its lease runs from now."""

    id: str
    source: str
    depth: int
    code: str  # the item's kind code in its job ("p" page, "i" image URL, "f" image file)


@dataclass(frozen=True)
class DispatchParams:
    """What sizes a job's batches: its own fixed batch size, if any, and its measured costs."""

    kind: str | None
    batch: int | None
    adaptive: bool
    stats: Mapping[str, str | None]


@translated
class Ledger(ClusterLedger):
    """Typed access to the ledger; ``client`` must decode responses to str.

    The cluster-wide methods (workers, queues, memory, caches) come from ``ClusterLedger``.
    """

    def __init__(self, client: redis.Redis) -> None:
        # redis-py's annotations cannot say "decode_responses=True returns str".
        self.client: Any = client
        self._record = client.register_script(lua("record.lua", "complete.lua", "admit.lua"))
        self._seal = client.register_script(lua("seal.lua", "complete.lua"))
        self._seed = client.register_script(lua("seed.lua", "admit.lua"))
        self._dispatch = client.register_script(lua("dispatch.lua"))
        self._start = client.register_script(lua("start.lua"))
        self._claim_names = client.register_script(lua("claim_names.lua"))
        self._admit_items = client.register_script(lua("admit_items.lua"))
        self._cancel = client.register_script(lua("cancel.lua"))
        self._retry = client.register_script(lua("retry.lua"))
        self._claim_output = client.register_script(lua("claim_output.lua"))

    # -- producer side ------------------------------------------------------
    def create_job(self, job_id: str, kind: str, spec: dict[str, Any], output_dir: str, **fields: str | int) -> float:
        """Create the job record; ``fields`` are extra hash fields (a window, a crawl's limits...)."""
        now = time.time()
        pipe = self.client.pipeline()
        pipe.hset(job_key(job_id), mapping={
            "kind": kind, "state": "queued", "created_at": repr(now),
            "spec": json.dumps(spec), "output_dir": output_dir, "submitted": 0, **fields,
        })  # fmt: skip
        pipe.zadd(JOBS, {job_id: now})
        pipe.execute()
        return now

    def claim_output_dir(self, folder: str, job_id: str, *, schedule: str | None, overwrite: bool) -> str | None:
        """Make ``folder`` this job's; returns the job that holds it instead, if refused (see claim_output.lua)."""
        args: list[str | int] = [folder, job_id, schedule or "", int(overwrite), job_key("")]
        owner = self._claim_output(keys=[OUTPUT_DIRS], args=args)
        return str(owner) if owner else None

    def activate(self, job_id: str) -> None:
        """The job has items to send: every worker's ticker now claims them too (until it is finalized)."""
        self.client.sadd(ACTIVE_JOBS, job_id)

    def admit_items(self, job_id: str, items: Sequence[tuple[str, str, str]]) -> list[str]:
        """Register (id, source, kind) items and queue them in the job's frontier; returns new ids."""
        if not items:
            return []
        keys = [job_key(job_id, "items"), job_key(job_id, "urls"), job_key(job_id, "frontier")]
        fresh: list[str] = self._admit_items(keys=keys, args=[v for item in items for v in item])
        if fresh:
            self.client.hincrby(job_key(job_id), "submitted", len(fresh))
        return fresh

    def seal(self, job_id: str) -> bool:
        """All items are enqueued; returns True if this finished the job."""
        keys = [job_key(job_id), job_key(job_id, "items"), job_key(job_id, "stats")]
        return bool(self._seal(keys=keys, args=[repr(time.time())]))

    def cancel(self, job_id: str) -> bool:
        self.meta(job_id)  # raises JobNotFound
        return bool(self._cancel(keys=[job_key(job_id)], args=[repr(time.time())]))

    def retry(self, job_id: str, item_ids: Sequence[str]) -> int:
        """Take these failed items of a finished job out of the aggregate and back into its frontier.

        The job is ``running`` and active again and keeps its total, so it ends
        (once) when the re-run items are recorded; they are leased and sent like
        any other item, so an interrupted send is re-sent by the ticker. Ids that
        are not failures are skipped; returns how many were taken.
        """
        self.meta(job_id)  # raises JobNotFound
        if not item_ids:
            return 0
        keys = [job_key(job_id), job_key(job_id, "done"), job_key(job_id, "stats"), job_key(job_id, "frontier"),
                ACTIVE_JOBS, *job_keys(job_id)]  # fmt: skip
        try:
            return int(self._retry(keys=keys, args=[job_id, repr(time.time()), *item_ids]))
        except redis.ResponseError as exc:
            raise UsageError(f"cannot retry job {job_id}: {exc}") from None

    # -- worker side ----------------------------------------------------------
    def record(
        self, job_id: str, results: Iterable[ItemResult], *, progress: Mapping[str, int] | None = None
    ) -> tuple[int, bool]:
        """Record results; returns (newly counted, whether this call finished the job).

        ``progress`` counters (see ``advance``) are bumped in the same round trip.
        """
        return self.record_raw(job_id, [json.dumps(r.to_json(), separators=(",", ":")) for r in results], progress)

    @staticmethod
    def _record_keys(job_id: str) -> list[str]:
        parts = ("items", "done", "stats", "urls", "frontier", "inflight", "leases", "words", *CRAWL_DEPTH_PARTS,
                 "offsite", "feed")  # fmt: skip
        return [job_key(job_id), *(job_key(job_id, p) for p in parts)]

    def record_raw(
        self, job_id: str, payload: list[str], progress: Mapping[str, int] | None = None
    ) -> tuple[int, bool]:
        """Record pre-encoded results (a crawl page's JSON carries its discoveries); see ``record``."""
        if not progress:
            if not payload:
                return 0, False
            added, finished = self._record(keys=self._record_keys(job_id), args=[repr(time.time()), *payload])
            return int(added), bool(finished)
        pipe = self.client.pipeline(transaction=False)
        for stage, count in progress.items():
            pipe.hincrby(job_key(job_id, "progress"), stage, count)
        if not payload:
            pipe.execute()
            return 0, False
        keys = self._record_keys(job_id)
        args = [repr(time.time()), *payload]
        pipe.evalsha(self._record.sha, len(keys), *keys, *args)
        reply = pipe.execute(raise_on_error=False)[-1]
        if isinstance(reply, redis.exceptions.NoScriptError):  # a restarted Redis forgot it: load and run
            reply = self._record(keys=keys, args=args)
        elif isinstance(reply, Exception):
            raise reply
        added, finished = reply
        return int(added), bool(finished)

    # -- the frontier: items waiting to be sent ----------------------------------
    def seed(self, job_id: str, seeds: Sequence[tuple[str, str]]) -> int:
        """Admit (id, url) seeds at depth 0 and seal: the crawl's total now grows as it goes."""
        keys = [job_key(job_id), *(job_key(job_id, p) for p in ("items", "urls", "frontier", "stats"))]
        flat = [value for pair in seeds for value in pair]
        return int(self._seed(keys=keys, args=[repr(time.time()), *flat]))

    def dispatch(
        self, job_id: str, lease_s: float, window: int, *, min_window: int = 0, batch: int = 1, limit: int = 0
    ) -> list[Claimed]:
        """Claim items to send as tasks, each leased for ``lease_s``.

        The job's own ``window`` field wins over ``window``; ``min_window`` raises either.
        Images are claimed in whole ``batch``es while more wait than the window has room for.
        ``limit`` (if not 0) is a crawl batch topping itself up: at most that many pages,
        images only in whole batches, expired leases left to the ticker.
        """
        parts = ("frontier", "inflight", "leases", "urls", "unsettled")
        keys = [job_key(job_id), *(job_key(job_id, p) for p in parts)]
        raw = self._dispatch(keys=keys, args=[repr(time.time()), lease_s, window, min_window, batch, limit])
        return [Claimed(str(i), str(u), int(d), str(k)) for i, u, d, k in (json.loads(r) for r in raw)]

    def defer(self, job_id: str, item_ids: Sequence[str], delay_s: float) -> None:
        """Send these leased items again in ``delay_s`` (the ticker re-sends expired leases), not at their lease's end.

        For a batch that could not finish for want of a shared resource (room for
        fetched bytes): it gives its items back instead of holding a task thread.
        """
        if item_ids:
            when = time.time() + delay_s
            self.client.zadd(job_key(job_id, "leases"), dict.fromkeys(item_ids, when), xx=True)

    def dispatch_params(self, job_id: str, stat_fields: Sequence[str]) -> DispatchParams:
        """The job's kind, fixed batch size, whether it adapts, and the ``stat_fields`` that size it."""
        pipe = self.client.pipeline(transaction=False)
        pipe.hmget(job_key(job_id), ["kind", "batch", "adaptive"])
        pipe.hmget(job_key(job_id, "stats"), list(stat_fields))
        (kind, batch, adaptive), stats = pipe.execute()
        return DispatchParams(kind, int(batch) if batch else None, bool(adaptive),
                              dict(zip(stat_fields, stats, strict=True)))  # fmt: skip

    def active_jobs(self) -> list[str]:
        """Jobs that may have items to send; ones whose record expired are dropped from the set."""
        active = []
        for job_id in self.client.smembers(ACTIVE_JOBS):
            if self.client.exists(job_key(job_id)):
                active.append(str(job_id))
            else:
                self.client.srem(ACTIVE_JOBS, job_id)
        return active

    def top_words(self, job_id: str, count: int = 20) -> list[tuple[str, int]]:
        pairs = self.client.zrevrange(job_key(job_id, "words"), 0, count - 1, withscores=True)
        return [(str(word), int(score)) for word, score in pairs]

    def off_site_images(self, job_id: str, count: int = 10) -> list[tuple[str, int]]:
        """Hosts of the images a crawl's scope left out, by how many times pages referred to them."""
        pairs = self.client.zrevrange(job_key(job_id, "offsite"), 0, count - 1, withscores=True)
        return [(str(host), int(score)) for host, score in pairs]

    def mark_running(self, job_id: str) -> bool:
        """The first batch has started: a queued job is now running (shown at once by status/top)."""
        return bool(self._start(keys=[job_key(job_id)], args=[repr(time.time())]))

    def state_kind_spec(self, job_id: str) -> tuple[str | None, str | None, str | None]:
        """The job's state, kind and spec as stored (JSON text), in one round trip; Nones if it is gone."""
        state, kind, spec = self.client.hmget(job_key(job_id), ["state", "kind", "spec"])
        return state, kind, spec

    def claim_names(self, job_id: str, wanted: Sequence[tuple[str, str, str, str]]) -> list[str]:
        """Output names for (item id, name, fallback, last resort) tuples, in one round trip."""
        if not wanted:
            return []
        flat = [value for entry in wanted for value in entry]
        return [str(n) for n in self._claim_names(keys=[job_key(job_id, "names")], args=flat)]

    def mark_finalized(self, job_id: str, report_path: str) -> None:
        """The reduce step has written the report (``report`` in the document); nothing is left to send."""
        pipe = self.client.pipeline()
        pipe.hset(job_key(job_id), mapping={"report": report_path, "finalized_at": repr(time.time())})
        pipe.srem(ACTIVE_JOBS, job_id)
        pipe.execute()

    def expire(self, job_id: str, seconds: int) -> None:
        pipe = self.client.pipeline()
        for key in job_keys(job_id):
            pipe.expire(key, seconds)
        pipe.execute()

    # -- readers ----------------------------------------------------------------
    def meta(self, job_id: str) -> JobMeta:
        raw = self.client.hgetall(job_key(job_id))
        if not raw:
            raise JobNotFound(f"no job {job_id!r} (unknown id, or its retention expired)")
        return JobMeta(
            job_id=job_id,
            kind=raw.get("kind", "images"),
            state=raw.get("state", "queued"),
            created_at=float(raw.get("created_at", 0.0)),
            output_dir=raw.get("output_dir", ""),
            spec=json.loads(raw.get("spec") or "{}"),
            total=int(raw["total"]) if "total" in raw else None,
            submitted=int(raw.get("submitted", 0)),
            started_at=float(raw["started_at"]) if "started_at" in raw else None,
            finished_at=float(raw["finished_at"]) if "finished_at" in raw else None,
            reason=raw.get("reason"),
            report=raw.get("report"),
            schedule=raw.get("schedule"),
            idle_s=float(raw.get("idle_s", 0.0)),
        )

    def totals(self, job_id: str) -> Totals:
        return Totals.from_stats(self.client.hgetall(job_key(job_id, "stats")))

    def progress(self, job_id: str) -> dict[str, int]:
        return {k: int(v) for k, v in self.client.hgetall(job_key(job_id, "progress")).items()}

    def results(self, job_id: str, *, failed_only: bool = False) -> Iterator[ItemResult]:
        """Stream recorded item results (HSCAN: never the whole job in memory)."""
        for _, text in self.client.hscan_iter(job_key(job_id, "done"), count=500):
            raw = json.loads(text)
            if failed_only and raw.get("ok"):
                continue  # most results succeed: skip them before building one (a report's failures.jsonl)
            yield ItemResult.from_json(raw)

    def raw_results(self, job_id: str) -> Iterator[str]:
        """Stream recorded results as stored (JSON text), for readers that decode only what they need."""
        for _, raw in self.client.hscan_iter(job_key(job_id, "done"), count=500):
            yield str(raw)

    def feed_items(self, job_id: str, page_ids: Sequence[str]) -> list[str | None]:
        """A scrape's items of these pages (JSON lines, None if it has none), in one round trip."""
        return list(self.client.hmget(job_key(job_id, "feed"), list(page_ids))) if page_ids else []

    def job_field(self, job_id: str, name: str) -> str | None:
        """A field a kind keeps in the job's record (it expires with the job)."""
        value = self.client.hget(job_key(job_id), name)
        return None if value is None else str(value)

    def set_job_field(self, job_id: str, name: str, value: str) -> None:
        self.client.hset(job_key(job_id), name, value)

    def recent_fingerprints(self, limit: int) -> list[tuple[str, tuple[str | None, ...]]]:
        """The ``limit`` most recent jobs, each with what changes when it moves on: (state, report,
        finished_at, ok, failed), in two round trips whatever the number (a watcher re-reads only those)."""
        ids = [str(i) for i in self.client.zrevrange(JOBS, 0, limit - 1)]
        pipe = self.client.pipeline(transaction=False)
        for job_id in ids:
            pipe.hmget(job_key(job_id), ["state", "report", "finished_at"])
            pipe.hmget(job_key(job_id, "stats"), ["ok", "failed"])
        replies = pipe.execute()
        return [(job_id, tuple(replies[2 * i] + replies[2 * i + 1])) for i, job_id in enumerate(ids)]

    def recent_jobs(self, limit: int = 20) -> list[JobMeta]:
        metas = []
        for job_id in self.client.zrevrange(JOBS, 0, limit - 1):
            try:
                metas.append(self.meta(job_id))
            except JobNotFound:
                self.client.zrem(JOBS, job_id)  # expired: drop the index entry
        return metas

    # -- the client --------------------------------------------------------------
    def ping(self) -> None:
        """Raises ``BrokerUnavailable`` (with what to do) unless Redis answers."""
        self.client.ping()

    def close(self) -> None:
        self.client.close()
