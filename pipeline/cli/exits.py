"""The exit codes of `pipeline`, in one place: the commands return them, `--help` and the README list them."""

from __future__ import annotations

OK = 0  # the job succeeded (per-item failures are listed, not fatal); or a command did what it was asked
JOB_FAILED = 1  # the job ended failed or cancelled
USAGE = 2  # bad usage
UNAVAILABLE = 3  # Redis unreachable, no Redis to start, or an invalid configuration
NO_SUCH_JOB = 4
TIMED_OUT = 5  # --timeout passed before the job finished (it goes on)
INTERNAL = 70  # a bug
INTERRUPTED = 130  # Ctrl-C

CODES = (
    (OK, "success: the job succeeded (per-item failures are listed, not fatal), or the command did its work"),
    (JOB_FAILED, "the job ended failed or cancelled"),
    (USAGE, "bad usage: an unknown flag, a bad --ops chain, a source that does not exist, --timeout without --wait"),
    (UNAVAILABLE, "Redis unreachable, no Redis to start, or an invalid configuration"),
    (NO_SUCH_JOB, "no such job (or schedule)"),
    (TIMED_OUT, "--timeout passed before the job finished (the job goes on)"),
    (INTERNAL, "an internal error (a bug: please report it, with PIPELINE_LOG_LEVEL=DEBUG output)"),
    (INTERRUPTED, "interrupted (Ctrl-C); a job being followed goes on"),
)


def epilog() -> str:
    """The `--help` epilog: every exit code and what it means."""
    rows = "\n".join(f"    {code:<4} {meaning}" for code, meaning in CODES)
    return f"Every error a user can cause ends as one line on stderr and an exit code:\n\n\b\n{rows}\n"
