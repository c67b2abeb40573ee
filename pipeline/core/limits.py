"""Default limits shared by the settings and the stages that enforce them.

Kept apart from ``fetch`` (aiohttp) and ``imaging`` (Pillow) so that reading
the settings, which every CLI command does, imports neither.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.core.proxies import Proxies

DEFAULT_MAX_PIXELS = 64_000_000


@dataclass(frozen=True)
class FetchLimits:
    """Per-request limits; the defaults are what `pipeline` ships with."""

    timeout_s: float = 30.0
    connect_timeout_s: float = 10.0
    retries: int = 2
    max_body_bytes: int = 50 * 2**20
    backoff_s: float = 0.25
    max_backoff_s: float = 10.0
    max_redirects: int = 10
    # Keep the first max_body_bytes of a longer body instead of failing with too_large
    # (robots.txt: RFC 9309 has crawlers parse at least the first 500 KiB, not refuse the site).
    truncate_body: bool = False
    proxies: Proxies | None = None  # where requests go (HTTP_PROXY...); None: all direct
