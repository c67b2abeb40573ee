"""Per-job request context: the SSRF policy and politeness gate a job's fetches run under."""

from __future__ import annotations

from typing import Any

from pipeline.core.ssrf import UNRESTRICTED, AddressPolicy
from pipeline.politeness import Gate, Limits
from workers.runtime import Runtime


def request_context(rt: Runtime, job_id: str, spec: dict[str, Any]) -> tuple[AddressPolicy, Gate | None]:
    """Crawl jobs get a guarded policy and a cluster-wide gate; image jobs (URLs the user typed) neither."""
    if not spec.get("crawl"):
        return UNRESTRICTED, None
    policy = AddressPolicy(frozenset(spec.get("trusted_hosts", [])), bool(spec.get("allow_private")))
    limits = Limits(int(spec["concurrency"]), int(spec["per_host"]), float(spec["delay_s"]))
    return policy, Gate(rt.aredis, rt.acquire_script, job_id, limits)


def item_kind(spec: dict[str, Any]) -> str | None:
    """Images of a crawl are counted under their kind; an image job's items need none."""
    return "image" if spec.get("crawl") else None
