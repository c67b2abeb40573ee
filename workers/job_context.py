"""What a stage reads of its job before working on a batch: the job itself, and its fetch context."""

from __future__ import annotations

import logging
from typing import Any

from pipeline.core.document import FINAL_STATES
from pipeline.core.ssrf import UNRESTRICTED, AddressPolicy
from pipeline.kinds import load_job
from pipeline.kinds.images import FetchGuard
from pipeline.politeness import Gate
from workers.runtime import Runtime

log = logging.getLogger(__name__)


def live_job(rt: Runtime, job_id: str) -> Any:
    """The job (as its kind loads it), or None when the job is gone, cancelled or already final.

    The first batch of a queued job marks it running (shown at once by status and top).
    """
    state, kind, spec = rt.ledger.state_kind_spec(job_id)
    if state is None or kind is None or spec is None or state in FINAL_STATES:
        log.info("skipping batch", extra={"job_id": job_id, "state": state})
        return None
    if state == "queued":
        rt.ledger.mark_running(job_id)
    return load_job(kind, spec)


def request_context(rt: Runtime, job_id: str, guard: FetchGuard | None) -> tuple[AddressPolicy, Gate | None]:
    """A guarded job gets its SSRF policy and a cluster-wide politeness gate; URLs the user typed get neither."""
    if guard is None:
        return UNRESTRICTED, None
    return AddressPolicy(guard.trusted_hosts, guard.allow_private), Gate(
        rt.aredis, rt.acquire_script, job_id, guard.limits
    )
