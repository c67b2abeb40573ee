"""Every Redis key pipeline uses, named in one place (all under ``pl:``).

Jobs (``pipeline.ledger.jobs``), one job = a handful of keys expiring together:

    pl:jobs                  ZSET   job id -> created_at (the `jobs` listing)
    pl:active                SET    jobs that may have items to send (the ticker re-claims them)
    pl:outputs               HASH   output folder -> {job, schedule} that writes there
    pl:job:ID                HASH   kind, state, spec, output_dir, total, times, window, batch
    pl:job:ID:items          SET    expected item ids (the only ids that count)
    pl:job:ID:done           HASH   item id -> result JSON (first write wins)
    pl:job:ID:stats          HASH   ok, failed, bytes_*, fail:REASON, fmt:F, t:STAGE, ok:KIND
    pl:job:ID:progress       HASH   per-stage progress counters (display only)
    pl:job:ID:names          HASH   output file name -> item id (clash detection)
    pl:job:ID:urls           HASH   item id -> [source, depth, item code]
    pl:job:ID:frontier       ZSET   items waiting to be sent, by depth (-1: images)
    pl:job:ID:inflight       ZSET   crawl pages sent, by depth
    pl:job:ID:leases         ZSET   item id -> time its lease expires (then it is sent again)
    pl:job:ID:words, offsite ZSET   a crawl's word counts and off-site image hosts
    pl:job:ID:feed           HASH   a scrape's page id -> its items (JSON lines), with the page's first result
    pl:job:ID:links, unsettled, beyond   a crawl's depth bookkeeping (lua/admit.lua)
    pl:job:ID:slots, host:H, next:H      a crawl's politeness slots (lua/acquire.lua)

Workers, bodies, caches, schedules:

    pl:worker:NAME           HASH   a live worker's self-description (short TTL)
    pl:live:NAME             STRING the running instance of that worker (expires after PIPELINE_WORKER_LOST_S)
    pl:job:ID:held, owners   HASH, SET   which worker runs which item now (``holdings``: takeover of the dead)
    pl:blob:JOB:ITEM         STRING fetched bytes waiting for the transform stage
    pl:blob-held, -sizes, -bytes     the blobs' budget: blob -> expiry, blob -> size, bytes held (lua/blob_reserve.lua)
    pl:robots:ORIGIN         STRING a host's parsed robots.txt rules
    pl:cache:DIGEST          STRING a cached output; pl:cache-index, -sizes, -bytes its bookkeeping
    pl:sched:...             the schedules (``pipeline.scheduler.keys`` names the keys under it)
"""

from __future__ import annotations

PREFIX = "pl:"
JOBS = PREFIX + "jobs"
ACTIVE_JOBS = PREFIX + "active"
OUTPUT_DIRS = PREFIX + "outputs"
WORKER_PREFIX = PREFIX + "worker:"
LIVE_PREFIX = PREFIX + "live:"  # not under WORKER_PREFIX: the workers listing scans that for hashes
BLOB_PREFIX = PREFIX + "blob:"
ROBOTS_PREFIX = PREFIX + "robots:"
CACHE_PREFIX = PREFIX + "cache:"
# The cache's bookkeeping, outside CACHE_PREFIX so a scan of entries finds entries only:
# entry -> expiry time, entry -> size, and the bytes kept (lua/cache_put.lua).
CACHE_INDEX, CACHE_SIZES, CACHE_TOTAL = PREFIX + "cache-index", PREFIX + "cache-sizes", PREFIX + "cache-bytes"
SCHEDULES_PREFIX = PREFIX + "sched:"
# The blobs' budget, outside BLOB_PREFIX (lua/blob_reserve.lua): blob -> expiry, blob -> size, bytes held.
BLOB_HELD, BLOB_SIZES, BLOB_TOTAL = PREFIX + "blob-held", PREFIX + "blob-sizes", PREFIX + "blob-bytes"

# A crawl's links of pages whose depth may still drop, and refusals per URL (lua/admit.lua).
CRAWL_DEPTH_PARTS = ("links", "unsettled", "beyond")
JOB_PARTS = ("items", "done", "stats", "progress", "names", "urls", "frontier", "inflight", "leases", "words",
             *CRAWL_DEPTH_PARTS, "offsite", "feed")  # fmt: skip


def job_key(job_id: str, part: str = "") -> str:
    return f"{PREFIX}job:{job_id}" + (f":{part}" if part else "")


def job_keys(job_id: str) -> list[str]:
    """The job's record and every part of it (what expires, or persists, together)."""
    return [job_key(job_id)] + [job_key(job_id, part) for part in JOB_PARTS]


def politeness_keys(job_id: str, host: str) -> list[str]:
    """A crawl's slots for the whole job, and for one host (lua/acquire.lua)."""
    return [job_key(job_id), job_key(job_id, "slots"), job_key(job_id, f"host:{host}"), job_key(job_id, f"next:{host}")]


def worker_key(node: str) -> str:
    return WORKER_PREFIX + node


def live_key(node: str) -> str:
    return LIVE_PREFIX + node


def blob_key(job_id: str, item_id: str) -> str:
    return f"{BLOB_PREFIX}{job_id}:{item_id}"


def robots_key(origin: str) -> str:
    return ROBOTS_PREFIX + origin


def cache_entry_key(digest: str) -> str:
    return CACHE_PREFIX + digest
