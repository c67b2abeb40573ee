"""The job ledger in Redis: job records, expected items, results, aggregates.

Key layout (``pl:`` prefix, one job = a handful of keys, all expiring together):

    pl:jobs                  ZSET   job id -> created_at (the `jobs` listing)
    pl:job:ID                HASH   kind, state, spec, output_dir, total, times
    pl:job:ID:items          SET    expected item ids (the only ids that count)
    pl:job:ID:done           HASH   item id -> result JSON (first write wins)
    pl:job:ID:stats          HASH   ok, failed, bytes_*, fail:REASON, fmt:F, t:STAGE
    pl:job:ID:progress       HASH   per-stage progress counters (display only)
    pl:job:ID:names          HASH   output file name -> item id (clash detection)

Every mutation that must be exact is one Lua script (``pipeline/lua``), so it is
atomic across all workers and a retried batch is a no-op.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from importlib import resources
from typing import Any

import redis

from pipeline.core.aggregate import ItemResult, Totals
from pipeline.core.document import JobMeta, build_document
from pipeline.core.errors import JobNotFound, UsageError

PREFIX = "pl:"
JOBS_KEY = PREFIX + "jobs"


def _lua(name: str, *prelude: str) -> str:
    """A script, prefixed with the shared functions it calls (Redis scripts cannot import)."""
    files = resources.files("pipeline.lua")
    return "".join(files.joinpath(part).read_text() for part in (*prelude, name))


def job_key(job_id: str, part: str = "") -> str:
    return f"{PREFIX}job:{job_id}" + (f":{part}" if part else "")


# A crawl's links of pages whose depth may still drop, and refusals per URL (lua/admit.lua).
CRAWL_DEPTH_PARTS = ("links", "unsettled", "beyond")
PARTS = ("items", "done", "stats", "progress", "names", "urls", "frontier", "inflight", "leases", "words",
         *CRAWL_DEPTH_PARTS, "offsite")  # fmt: skip


def _keys(job_id: str) -> list[str]:
    return [job_key(job_id)] + [job_key(job_id, p) for p in PARTS]


class Ledger:
    """Typed access to the ledger; ``client`` must decode responses to str."""

    def __init__(self, client: redis.Redis) -> None:
        # redis-py's annotations cannot say "decode_responses=True returns str".
        self.client: Any = client
        self._record = client.register_script(_lua("record.lua", "complete.lua", "admit.lua"))
        self._seal = client.register_script(_lua("seal.lua", "complete.lua"))
        self._seed = client.register_script(_lua("seed.lua", "admit.lua"))
        self._dispatch = client.register_script(_lua("dispatch.lua"))
        self._start = client.register_script(_lua("start.lua"))
        self._claim_names = client.register_script(_lua("claim_names.lua"))
        self._add_items = client.register_script(_lua("add_items.lua"))
        self._admit_items = client.register_script(_lua("admit_items.lua"))
        self._cancel = client.register_script(_lua("cancel.lua"))
        self._retry = client.register_script(_lua("retry.lua"))

    # -- producer side ------------------------------------------------------
    def create_job(self, job_id: str, kind: str, spec: dict[str, Any], output_dir: str, **fields: str | int) -> float:
        """Create the job record; ``fields`` are extra hash fields (a crawl's max_pages...)."""
        now = time.time()
        pipe = self.client.pipeline()
        pipe.hset(job_key(job_id), mapping={
            "kind": kind, "state": "queued", "created_at": repr(now),
            "spec": json.dumps(spec), "output_dir": output_dir, "submitted": 0, **fields,
        })  # fmt: skip
        pipe.zadd(JOBS_KEY, {job_id: now})
        pipe.execute()
        return now

    def add_items(self, job_id: str, item_ids: Sequence[str]) -> list[str]:
        """Register ids; returns those not seen before in this job."""
        if not item_ids:
            return []
        fresh: list[str] = self._add_items(keys=[job_key(job_id, "items")], args=list(item_ids))
        if fresh:
            self.client.hincrby(job_key(job_id), "submitted", len(fresh))
        return fresh

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

    def retry(self, job_id: str, item_ids: Sequence[str]) -> list[tuple[str, str]]:
        """Take these failed items of a finished image job out of the aggregate: (id, source) each.

        The job is ``running`` again and keeps its total, so it ends (once) when
        the re-run items are recorded; ids that are not failures are skipped.
        """
        self.meta(job_id)  # raises JobNotFound
        if not item_ids:
            return []
        keys = [job_key(job_id), job_key(job_id, "done"), job_key(job_id, "stats"), *_keys(job_id)]
        try:
            raw = self._retry(keys=keys, args=list(item_ids))
        except redis.ResponseError as exc:
            raise UsageError(f"cannot retry job {job_id}: {exc}") from None
        return [(str(i), str(s)) for i, s in (json.loads(pair) for pair in raw)]

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
                 "offsite")  # fmt: skip
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

    # -- crawl frontier -----------------------------------------------------------
    def seed(self, job_id: str, seeds: Sequence[tuple[str, str]]) -> int:
        """Admit (id, url) seeds at depth 0 and seal: the crawl's total now grows as it goes."""
        keys = [job_key(job_id), *(job_key(job_id, p) for p in ("items", "urls", "frontier", "stats"))]
        flat = [value for pair in seeds for value in pair]
        return int(self._seed(keys=keys, args=[repr(time.time()), *flat]))

    def dispatch(
        self, job_id: str, lease_s: float, window: int, *, min_window: int = 0, batch: int = 1, limit: int = 0
    ) -> list[tuple[str, str, int, str]]:
        """Claim items to send as tasks: (id, url, depth, kind) with kind "p", "i" or "f".

        The job's own ``window`` field wins over ``window``; ``min_window`` raises either.
        Images are claimed in whole ``batch``es while more wait than the window has room for.
        ``limit`` (if not 0) is a crawl batch topping itself up: at most that many pages,
        images only in whole batches, expired leases left to the pump.
        """
        parts = ("frontier", "inflight", "leases", "urls", "unsettled")
        keys = [job_key(job_id), *(job_key(job_id, p) for p in parts)]
        raw = self._dispatch(keys=keys, args=[repr(time.time()), lease_s, window, min_window, batch, limit])
        return [(str(i), str(u), int(d), str(k)) for i, u, d, k in (json.loads(r) for r in raw)]

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

    def advance(self, job_id: str, stage: str, count: int = 1) -> None:
        """Bump a display-only progress counter (may over-count on re-delivery)."""
        self.client.hincrby(job_key(job_id, "progress"), stage, count)

    def job_state_and_spec(self, job_id: str) -> tuple[str | None, dict[str, Any] | None]:
        state, spec = self.client.hmget(job_key(job_id), ["state", "spec"])
        return state, (json.loads(spec) if spec else None)

    def claim_names(self, job_id: str, wanted: Sequence[tuple[str, str, str, str]]) -> list[str]:
        """Output names for (item id, name, fallback, last resort) tuples, in one round trip."""
        if not wanted:
            return []
        flat = [value for entry in wanted for value in entry]
        return [str(n) for n in self._claim_names(keys=[job_key(job_id, "names")], args=flat)]

    def claim_name(self, job_id: str, name: str, item_id: str) -> bool:
        """Claim an output file name; True if it is (now or already) this item's."""
        key = job_key(job_id, "names")
        if self.client.hsetnx(key, name, item_id):
            return True
        return bool(self.client.hget(key, name) == item_id)

    def mark_finalized(self, job_id: str, report_path: str) -> None:
        """The reduce step has written the report (``report`` in the document)."""
        self.client.hset(job_key(job_id), mapping={"report": report_path, "finalized_at": repr(time.time())})

    def expire(self, job_id: str, seconds: int) -> None:
        pipe = self.client.pipeline()
        for key in _keys(job_id):
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
        )

    def totals(self, job_id: str) -> Totals:
        return Totals.from_stats(self.client.hgetall(job_key(job_id, "stats")))

    def progress(self, job_id: str) -> dict[str, int]:
        return {k: int(v) for k, v in self.client.hgetall(job_key(job_id, "progress")).items()}

    def document(self, job_id: str) -> dict[str, Any]:
        meta = self.meta(job_id)
        if meta.kind != "crawl":
            return build_document(meta, self.totals(job_id), time.time())
        words, off_site = self.top_words(job_id), self.off_site_images(job_id)
        return build_document(meta, self.totals(job_id), time.time(), words, off_site)

    def results(self, job_id: str, *, failed_only: bool = False) -> Iterator[ItemResult]:
        """Stream recorded item results (HSCAN: never the whole job in memory)."""
        for _, raw in self.client.hscan_iter(job_key(job_id, "done"), count=500):
            result = ItemResult.from_json(json.loads(raw))
            if not failed_only or not result.ok:
                yield result

    def recent_jobs(self, limit: int = 20) -> list[JobMeta]:
        metas = []
        for job_id in self.client.zrevrange(JOBS_KEY, 0, limit - 1):
            try:
                metas.append(self.meta(job_id))
            except JobNotFound:
                self.client.zrem(JOBS_KEY, job_id)  # expired: drop the index entry
        return metas
