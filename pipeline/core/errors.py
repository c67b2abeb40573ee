"""One exception root for everything pipeline raises on purpose.

    PipelineError                    anything we raise deliberately; the CLI prints .message
    ├── UsageError                   the user asked for something malformed (exit 2)
    │   ├── OpSpecError              a bad ``--ops`` chain
    │   └── SourceError              a source that names nothing usable
    ├── ConfigError                  settings that cannot work together (exit 3)
    ├── BrokerUnavailable            Redis cannot be reached (exit 3)
    ├── RedisNotFound                no redis-server binary to start a private one (exit 3)
    ├── JobNotFound                  an unknown job id (exit 4)
    ├── LedgerLost                   a job's records vanished while it ran: Redis lost its data (exit 1)
    └── ItemError                    one item failed; becomes a per-item result, never a crash
        ├── FetchError               reasons: http_404, timeout, too_large, connection_error, ...
        ├── ImageError               reasons: not_an_image, truncated, decompression_bomb, ...
        └── StoreError               reasons: unsafe_name, write_error

ItemErrors carry a short machine ``reason`` (the key in the report's ``failures``)
and a human ``detail``; they cross process boundaries, so they stay picklable.
"""

from __future__ import annotations


class PipelineError(Exception):
    """Root of every error pipeline raises deliberately."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UsageError(PipelineError):
    """The request is malformed; the user can fix it by changing the command."""

    exit_code = 2


class OpSpecError(UsageError):
    """An ``--ops`` chain names an unknown op or gives it bad arguments."""


class SourceError(UsageError):
    """A source (file, directory, glob, URL list) names nothing that can be processed."""


class ConfigError(PipelineError):
    """Settings that cannot work, e.g. a visibility timeout shorter than a task may run."""

    exit_code = 3


class BrokerUnavailable(PipelineError):
    """Redis (broker and ledger) cannot be reached."""

    exit_code = 3


class RedisFull(BrokerUnavailable):
    """Redis refuses writes: its memory is at ``maxmemory`` and its policy evicts nothing."""


class RedisNotFound(PipelineError):
    """No Redis configured and no redis-server binary to start a private one."""

    exit_code = 3


class JobNotFound(PipelineError):
    """No job with that id exists (or its retention has expired)."""

    exit_code = 4


class ItemError(PipelineError):
    """One item could not be processed; recorded as a per-item failure with ``reason``."""

    default_reason = "error"

    def __init__(self, reason: str | None = None, detail: str = "") -> None:
        self.reason = reason or self.default_reason
        self.detail = detail
        super().__init__(f"{self.reason}: {detail}" if detail else self.reason)

    def __reduce__(self) -> tuple[type[ItemError], tuple[str, str]]:
        # Keep (reason, detail) across the process-pool pipe.
        return (type(self), (self.reason, self.detail))


class FetchError(ItemError):
    """The item's bytes could not be fetched (HTTP status, timeout, size cap, scheme...)."""

    default_reason = "fetch_error"


class ImageError(ItemError):
    """The bytes are not an image we accept, or the transform failed."""

    default_reason = "image_error"


class StoreError(ItemError):
    """The output could not be written safely inside the job's output directory."""

    default_reason = "store_error"


class LedgerLost(PipelineError):
    """A job we saw running is gone from Redis: it restarted without persistence (or was flushed)."""

    exit_code = 1
