"""Redis clients, and the one place where Redis connection errors are translated.

Everything that talks to Redis goes through ``connect``; callers that must turn
"Redis is down" into a user-facing error wrap their calls in ``reachable``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import redis

from pipeline.core.errors import BrokerUnavailable


def redact(url: str) -> str:
    """The URL with any password replaced, safe for logs and error messages.

    Works on the raw netloc text, never on parsed ports or hosts, so a
    malformed URL is still redacted instead of raising while we report an error.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return re.sub(r"//[^@/]*@", "//***@", url)
    userinfo, at, hostport = parts.netloc.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    user = userinfo.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{hostport}"))


def connect(url: str, *, binary: bool = False) -> redis.Redis:
    """A pooled client; ``binary`` keeps values as bytes (blobs), otherwise str."""
    return redis.Redis.from_url(
        url,
        decode_responses=not binary,
        socket_connect_timeout=5,
        socket_timeout=30,
        health_check_interval=15,
        retry_on_timeout=True,
    )


@contextmanager
def reachable(url: str) -> Iterator[None]:
    """Turn a connection failure inside the block into ``BrokerUnavailable``."""
    try:
        yield
    except redis.AuthenticationError:  # a ConnectionError subclass: must come first
        raise BrokerUnavailable(f"Redis at {redact(url)} refused the password; check PIPELINE_REDIS_URL") from None
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        raise BrokerUnavailable(
            f"broker unreachable: cannot connect to Redis at {redact(url)} ({exc}). "
            "Start one with `pipeline up`, or set PIPELINE_REDIS_URL."
        ) from None
