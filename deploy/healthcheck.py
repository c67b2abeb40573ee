"""Container health checks for the roles that have no probe of their own.

    python /app/deploy/healthcheck.py scheduler    # exit 0 while a scheduler of this container beats

Workers use `pipeline workers --json --local`, Flower and the demo site answer
HTTP. A scheduler is healthy while its heartbeat (``pl:sched:alive:NAME``, a
few seconds' TTL) names this container's host name.
"""

from __future__ import annotations

import socket
import sys

from pipeline.config import Settings
from pipeline.ledger.connection import connect
from pipeline.scheduler.store import ScheduleStore


def scheduler_alive() -> bool:
    url = Settings.load().redis_url
    if not url:
        return False
    client = connect(url)
    try:
        host = socket.gethostname()
        return any(beat.get("host") == host for beat in ScheduleStore(client).live_schedulers())
    finally:
        client.close()


def main(argv: list[str]) -> int:
    checks = {"scheduler": scheduler_alive}
    if len(argv) != 1 or argv[0] not in checks:
        print(f"usage: healthcheck.py {'|'.join(checks)}", file=sys.stderr)
        return 2
    try:
        return 0 if checks[argv[0]]() else 1
    except Exception as exc:  # a health check reports, it never raises
        print(f"unhealthy: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
