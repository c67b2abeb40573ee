"""Redis clients, and the one place where Redis connection errors are translated.

Everything that talks to Redis goes through ``connect``. The ledger's classes
are ``translated``: a connection error inside them becomes ``BrokerUnavailable``
(exit 3, with what to do), and a write refused by a full Redis ``RedisFull`` (a
``BrokerUnavailable`` too), so their callers never translate it again. Code that
talks to a foreign client (kombu sending a task) wraps it in ``reachable``.
"""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import redis

from pipeline.core.errors import BrokerUnavailable, RedisFull
from pipeline.ledger.memory import FULL_HINT


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
    except redis.OutOfMemoryError:
        raise RedisFull(f"Redis at {redact(url)} is full (used memory over maxmemory, nothing evictable): "
                        f"{FULL_HINT}") from None  # fmt: skip
    except redis.AuthenticationError:  # a ConnectionError subclass: must come first
        raise BrokerUnavailable(f"Redis at {redact(url)} refused the password; check PIPELINE_REDIS_URL") from None
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        raise BrokerUnavailable(
            f"broker unreachable: cannot connect to Redis at {redact(url)} ({exc}). "
            "Start one with `pipeline up`, or set PIPELINE_REDIS_URL."
        ) from None


# What a caller that rides out a Redis outage catches: translated or not (a ResponseError stays Redis's).
REDIS_TROUBLE: tuple[type[Exception], ...] = (redis.RedisError, BrokerUnavailable)


def _described(client: Any) -> str:
    """Where a client connects, for messages (never its password)."""
    kwargs = client.connection_pool.connection_kwargs
    if "path" in kwargs:
        return f"unix://{kwargs['path']}"
    return f"redis://{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}/{kwargs.get('db', 0)}"


def _translating(method: Callable[..., Any]) -> Callable[..., Any]:
    if inspect.isgeneratorfunction(method):

        @functools.wraps(method)
        def generator(self: Any, *args: Any, **kwargs: Any) -> Any:
            with reachable(_described(self.client)):
                yield from method(self, *args, **kwargs)

        return generator

    @functools.wraps(method)
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        with reachable(_described(self.client)):
            return method(self, *args, **kwargs)

    return call


T = TypeVar("T", bound=type)


def translated(cls: T) -> T:
    """Class decorator: every public method turns Redis connection errors into ``BrokerUnavailable``.

    The ledger's classes are the boundary between pipeline and Redis: callers
    (the CLI, the producer, the scheduler, tasks) see the project's own error
    with an actionable message, and never wrap calls themselves. The class
    must keep its client in ``self.client``.
    """
    for name, member in list(vars(cls).items()):
        if not name.startswith("_") and inspect.isfunction(member):
            setattr(cls, name, _translating(member))
    return cls
