"""Settings: every knob in one typed place, read from ``PIPELINE_*`` variables.

This is the only module that reads the environment. Entry points (the CLI, the
Celery app, the worker start-up hook) call ``Settings.load()`` once and pass
the object down; nothing below them looks at ``os.environ``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, AliasChoices, BeforeValidator, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from pipeline.core.errors import ConfigError
from pipeline.core.limits import DEFAULT_MAX_PIXELS, FetchLimits
from pipeline.core.pins import parse_pins
from pipeline.core.proxies import Proxies, check_proxy_url

REDIS_SCHEMES = ("redis", "rediss", "unix")


def _redis_dsn(url: str) -> str:
    """A Redis URL redis-py can connect with (``redis://[:password@]host[:port][/db]``, ``rediss://``,
    ``unix:///path``), kept as written; anything else is refused here, not as a traceback later.

    The messages never repeat the URL: it may hold a password.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ValueError(
            "must be a Redis URL like redis://[:password@]host:6379/0 (its port is not a number from 1 to 65535)"
        ) from None
    if parts.scheme not in REDIS_SCHEMES:
        raise ValueError(
            "must be a Redis URL like redis://[:password@]host:6379/0 (schemes: redis://, rediss://, unix://)"
        )
    if parts.scheme == "unix":
        if not parts.path:
            raise ValueError("a unix:// Redis URL needs the socket's path: unix:///run/redis.sock")
        return url
    if not parts.hostname:
        raise ValueError("the Redis URL has no host: redis://[:password@]host:6379/0")
    if port == 0:
        raise ValueError("the Redis URL's port must be 1-65535")
    database = parts.path.strip("/")
    if database and not database.isdigit():
        raise ValueError("the Redis URL's path must be a database number (/0)")
    return url


RedisDsn = Annotated[str, AfterValidator(_redis_dsn)]
LogLevel = Annotated[
    Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"],
    BeforeValidator(lambda value: value.strip().upper() if isinstance(value, str) else value),
]


def available_cores() -> int:
    """Cores this process may run on (respects taskset/cgroup affinity, unlike cpu_count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


class Settings(BaseSettings):
    """Typed configuration; each field is ``PIPELINE_<NAME>`` in the environment."""

    # An empty variable means "not set" (compose passes ${VAR:-} through as "").
    model_config = SettingsConfigDict(env_prefix="PIPELINE_", extra="ignore", frozen=True, env_ignore_empty=True)

    redis_url: RedisDsn | None = Field(
        None, description="Redis for broker, ledger and blobs; unset = a private one (`pipeline up`)"
    )
    home: Path = Field(Path("~/.pipeline"), description="state directory (private Redis, demo data)")
    output_root: Path | None = Field(
        None, description="where job folders go (default HOME/outputs); when set, the only place a job may write"
    )
    batch_size: int = Field(20, ge=1, le=1000, description="items per task message")
    job_window: int = Field(
        800, ge=1, le=1_000_000, description="items of one job in flight at once: how long a small job can wait"
    )
    processes: int | None = Field(None, ge=1, le=256, description="process-pool size; default all cores")
    threads: int = Field(8, ge=1, le=256, description="thread-pool size for blocking I/O")
    concurrency: int | None = Field(None, ge=1, le=512, description="Celery task threads per worker")
    fetch_timeout_s: float = Field(30.0, gt=0, description="whole-request deadline per attempt")
    connect_timeout_s: float = Field(10.0, gt=0, description="TCP connect timeout")
    fetch_retries: int = Field(2, ge=0, le=10, description="extra attempts on 5xx, 429 and timeouts")
    max_body_bytes: int = Field(50 * 2**20, ge=1024, description="cap on a fetched body")
    max_pixels: int = Field(DEFAULT_MAX_PIXELS, ge=1, description="decompression-bomb cap")
    fetch_memory_bytes: int = Field(
        256 * 2**20,
        ge=1024,
        description="fetched bodies a worker holds at once, all requests together: bodies over 1 MiB reserve "
        "their length and wait for room (one body of the cap always fits)",
    )
    max_parse_bytes: int = Field(
        8 * 2**20, ge=64 * 1024, description="HTML parsed per crawl page; a longer page is parsed up to here"
    )
    resolve: str | None = Field(
        None, description="pin names to addresses like curl --resolve: 'name=addr,...' (the SSRF guard still applies)"
    )
    # The proxy convention every HTTP tool follows (curl, pip, requests), read by the workers:
    # PIPELINE_-prefixed names win over the plain ones (upper or lower case).
    http_proxy: str | None = Field(
        None,
        repr=False,  # may hold a password
        validation_alias=AliasChoices("PIPELINE_HTTP_PROXY", "HTTP_PROXY"),
        description="proxy for http:// requests (PIPELINE_HTTP_PROXY, else HTTP_PROXY/http_proxy)",
    )
    https_proxy: str | None = Field(
        None,
        repr=False,
        validation_alias=AliasChoices("PIPELINE_HTTPS_PROXY", "HTTPS_PROXY"),
        description="proxy for https:// requests (PIPELINE_HTTPS_PROXY, else HTTPS_PROXY/https_proxy)",
    )
    no_proxy: str | None = Field(
        None,
        validation_alias=AliasChoices("PIPELINE_NO_PROXY", "NO_PROXY"),
        description="hosts reached directly: names (and their subdomains), host:port, IPs, CIDR blocks, * "
        "(loopback and PIPELINE_RESOLVE names always are)",
    )
    parse_pool: Literal["processes", "threads"] = Field(
        "processes", description="where crawl pages are parsed (see `make bench` pools)"
    )
    handoff: Literal["local", "redis"] = Field(
        "local",
        description="fetched images: local = a worker serving the transform queue transforms what it fetched "
        "in its own pool; redis = always through Redis blobs and a transform task (any worker takes it)",
    )
    transform_attempts: int = Field(3, ge=1, le=10, description="tries when a pool process dies")
    test_crash_dir: str | None = Field(
        None, description="TEST HOOK only (fault-injection suite): pool children crash on marked inputs"
    )
    task_deadline_s: float = Field(240.0, gt=0, description="longest a batch task may run")
    visibility_timeout_s: float = Field(
        300.0, gt=0, description="unacked batches of a lost worker are re-delivered after this"
    )
    worker_lost_s: float = Field(
        6.0,
        ge=3.0,
        le=600.0,
        description="a worker silent this long (no heartbeat) is taken for dead: the live workers re-send the "
        "batches it was running at once, without waiting for the visibility timeout",
    )
    health_file: Path | None = Field(
        None,
        description="a file the worker and the scheduler touch after each heartbeat written to Redis "
        "(the container healthcheck looks at its age instead of starting a Python process)",
    )
    blob_ttl_s: int = Field(
        3600,
        ge=60,
        description="longest fetched bytes wait in Redis for their transform (they are deleted as soon as their "
        "item is recorded; this bounds what a dead worker leaves, and is at most 4 x the visibility timeout)",
    )
    blob_budget_bytes: int | None = Field(
        None,
        ge=1024,
        description="fetched bytes all workers together may keep in Redis between fetch and transform; "
        "unset = half of Redis's maxmemory, or 512 MiB without one (never more than half of maxmemory)",
    )
    blob_wait_s: float = Field(
        10.0,
        ge=0,
        le=600,
        description="how long a fetch waits for room in the blob budget before giving its items back to be "
        "fetched again a moment later",
    )
    retention_s: int = Field(7 * 24 * 3600, ge=60, description="how long job records are kept")
    cache_ttl_s: int = Field(
        7 * 24 * 3600,
        ge=0,
        description="how long a transformed output stays in the Redis result cache for reuse by identical "
        "items (same bytes, ops, format, quality) of any job; 0 = no cache",
    )
    cache_max_bytes: int = Field(
        2 * 2**20, ge=0, description="largest output kept in the result cache (bigger ones are not cached)"
    )
    cache_max_total_bytes: int = Field(
        256 * 2**20,
        ge=0,
        description="most bytes of outputs the result cache keeps in Redis, all entries together (the ones "
        "closest to expiry leave first); 0 = no cap; never more than a quarter of Redis's maxmemory",
    )
    user_agent: str = Field(
        "pipeline/0.1 (+https://github.com/pipeline; image and crawl jobs)",
        min_length=1,
        description="User-Agent of every request; its product token (before '/') picks the robots.txt group",
    )
    log_level: LogLevel = Field("INFO", description="DEBUG, INFO, WARNING, ERROR or CRITICAL")
    log_format: Literal["text", "json"] = Field("text", description="text (key=value) or json lines")
    scheduler_sync_s: float = Field(
        1.0, gt=0, le=60, description="how often a scheduler re-reads schedules from Redis and adopts orphaned fires"
    )
    scheduler_misfire_grace_s: float = Field(
        0.0, ge=0, description="a fire later than this is recorded as missed; 0 = no limit (late fires still run)"
    )
    scheduler_coalesce: bool = Field(True, description="run once, not once per fire, after a scheduler was down")
    scheduler_overlap: Literal["skip", "queue"] = Field(
        "skip", description="a fire while the schedule's previous job runs: skip it, or queue it until that job ends"
    )
    flower_user: str = Field("admin", pattern=r"^[^:]+$", description="`pipeline flower` basic-auth user (no colon)")
    flower_password: SecretStr | None = Field(
        None, description="`pipeline flower` basic-auth password; unset = a random one, printed once at start"
    )
    flower_address: str = Field("127.0.0.1", description="address `pipeline flower` listens on")
    flower_port: int = Field(5555, ge=0, le=65535, description="port `pipeline flower` listens on (0 = any free)")

    @classmethod
    def load(cls, **overrides: object) -> Settings:
        try:
            return cls(**overrides)  # type: ignore[arg-type]
        except ValidationError as exc:
            problems = "; ".join(_problem(err) for err in exc.errors())
            raise ConfigError(f"invalid configuration: {problems}") from None

    @field_validator("resolve")
    @classmethod
    def _pins_parse(cls, value: str | None) -> str | None:
        try:
            parse_pins(value)
        except ConfigError as exc:
            raise ValueError(str(exc).removeprefix("PIPELINE_RESOLVE ")) from None
        return value

    @property
    def resolve_pins(self) -> dict[str, str]:
        return parse_pins(self.resolve)

    @property
    def proxies(self) -> Proxies | None:
        """The workers' proxies (None: every request goes direct).

        Checked here, when a worker starts, not when settings load: a proxy
        variable set for other tools (a SOCKS URL, say) must not break every
        CLI command, only a worker that would fetch through it.
        """
        for name, value in (("HTTP_PROXY", self.http_proxy), ("HTTPS_PROXY", self.https_proxy)):
            if value:
                try:
                    check_proxy_url(value)
                except ConfigError as exc:
                    raise ConfigError(f"invalid configuration: PIPELINE_{name} (or {name}): {exc}") from None
        return Proxies.from_settings(self.http_proxy, self.https_proxy, self.no_proxy, frozenset(self.resolve_pins))

    @property
    def state_dir(self) -> Path:
        return self.home.expanduser()

    def state_path(self, *parts: str) -> Path:
        """``PIPELINE_HOME/parts...`` as a folder, created if missing (mode 700 for HOME itself).

        The one place a state folder is made: an unusable ``PIPELINE_HOME`` (``/proc/nope``,
        a file, no permission) is a configuration error naming the variable, not an OSError.
        """
        path = self.state_dir.joinpath(*parts)
        try:
            self.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"PIPELINE_HOME={self.home}: cannot create {path}: {exc.strerror or exc}; "
                "set PIPELINE_HOME to a folder you can write"
            ) from None
        return path

    @property
    def outputs(self) -> Path:
        return (self.output_root or self.state_dir / "outputs").expanduser().resolve()

    @property
    def blob_expiry_s(self) -> int:
        """How long a blob (and its room in the budget) lasts: after 4 leases its item has been sent again anyway."""
        return min(self.blob_ttl_s, max(60, round(4 * self.visibility_timeout_s)))

    @property
    def pool_processes(self) -> int:
        return self.processes or available_cores()

    @property
    def task_threads(self) -> int:
        # A fetch task holds its thread through its images' transform (the hand-off to the worker's own
        # pool, workers.image_stages), so the pool is fed while other tasks fetch: measured on the docs
        # site, 2 per process left the pool short (crawl --images 15.0-16.4 s; 8.3-9.7 s with 8 threads).
        return self.concurrency or max(8, 4 * self.pool_processes)

    def check_worker(self) -> None:
        """Everything a worker refuses to start with, each as one line naming the variable."""
        self.check_delivery_timeouts()
        _ = self.proxies

    def check_delivery_timeouts(self) -> None:
        """Refuse settings under which Redis would re-deliver a batch that is still running.

        kombu's Redis transport re-queues an unacked message once
        ``visibility_timeout`` passes, whether or not its worker is alive, so it
        must exceed the longest a batch can take: the task deadline, which must
        itself leave room for every fetch attempt.
        """
        attempts = self.fetch_retries + 1
        worst_fetch = self.fetch_timeout_s * attempts + FetchLimits.max_backoff_s * self.fetch_retries
        if self.task_deadline_s <= worst_fetch:
            raise ConfigError(
                f"PIPELINE_TASK_DEADLINE_S={self.task_deadline_s:g} must exceed the worst-case fetch time "
                f"({attempts} attempts x {self.fetch_timeout_s:g} s + {self.fetch_retries} back-offs of up to "
                f"{FetchLimits.max_backoff_s:g} s = {worst_fetch:g} s)"
            )
        if self.visibility_timeout_s <= self.task_deadline_s * 1.2:
            raise ConfigError(
                f"PIPELINE_VISIBILITY_TIMEOUT_S={self.visibility_timeout_s:g} must be more than 1.2 x "
                f"PIPELINE_TASK_DEADLINE_S={self.task_deadline_s:g}, or Redis would hand running "
                "batches to a second worker"
            )


def _problem(error: object) -> str:
    """One pydantic error as ``PIPELINE_NAME: what is wrong`` (never the value: it may be a secret)."""
    assert isinstance(error, dict)
    name = "PIPELINE_" + "_".join(str(part) for part in error["loc"]).upper().removeprefix("PIPELINE_")
    message = re.sub(r"^Value error, ", "", str(error["msg"]))
    return f"{name}: {message}"
