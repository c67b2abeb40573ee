"""When a schedule fires: ``--cron``/``--every``/``--tz`` parsed into APScheduler 3 triggers.

Fire times are handled as integer epoch milliseconds everywhere else (claims,
history), so every replica derives the very same instants from a definition:
cron times are wall-clock times in the schedule's zone, and an interval is
anchored at a start instant stored with the definition (APScheduler's default
anchor, "now", would differ per process and break exactly-once).

Two APScheduler 3 details handled here:

* ``CronTrigger.from_crontab`` numbers weekdays from Monday = 0, unlike crontab
  (Sunday = 0 or 7); the 3.x series keeps that for compatibility
  (agronholm/apscheduler#286). We translate the day-of-week field to day names,
  so ``0 3 * * 1-5`` means Monday to Friday as in every crontab.
* ``get_next_fire_time(None, now)`` returns the first fire time at or after
  ``now``; ``next_after`` asks for ``now`` = one millisecond past a fire time
  to get the one strictly after it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from pipeline.core.errors import UsageError

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
EVERY = re.compile(r"^(\d+)([smhd])$")
CRON_HELP = "5 fields: minute hour day-of-month month day-of-week, e.g. '0 3 * * *'"
DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def to_ms(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)


def from_ms(ms: int, tz: tzinfo | None = None) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz or UTC)


def parse_zone(name: str) -> tzinfo:
    """The zone called ``name``; UTC needs no time zone database (a slim container may have none)."""
    if name.upper() in ("UTC", "ETC/UTC", "Z"):
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise UsageError(
            f"--tz: unknown time zone {name!r} (use an IANA name such as UTC or Europe/Paris; "
            "zones other than UTC need the system time zone database or the tzdata package)"
        ) from None


def parse_every(text: str) -> int:
    """``90s``, ``15m``, ``6h``, ``1d`` -> seconds."""
    match = EVERY.match(text.strip().lower())
    if not match or int(match.group(1)) == 0:
        raise UsageError(f"--every: expected a positive whole number and a unit s, m, h or d (e.g. 15m), got {text!r}")
    return int(match.group(1)) * UNITS[match.group(2)]


def _day_number(token: str) -> int:
    if token.isdigit() and int(token) <= 7:
        return int(token)
    if token in DAY_NAMES:
        return DAY_NAMES.index(token)
    raise ValueError(f"day-of-week {token!r} is not 0-7 or sun..sat")


def crontab_weekdays(field: str) -> str:
    """A crontab day-of-week field (0 or 7 = Sunday) as the day names APScheduler 3 reads unambiguously."""
    if field in ("*", "?"):
        return "*"
    days: set[int] = set()
    for part in field.lower().split(","):
        span, slash, step_text = part.partition("/")
        if slash and not (step_text.isdigit() and int(step_text) > 0):
            raise ValueError(f"day-of-week step {step_text!r} is not a positive number")
        step = int(step_text) if slash else 1
        if span == "*":
            low, high = 0, 6
        elif "-" in span:
            first, last = span.split("-", 1)
            low, high = _day_number(first), _day_number(last)
            if high == 0 and low > 0:
                high = 7  # fri-sun
        else:
            low = _day_number(span)
            high = 7 if slash else low
        if low > high:
            raise ValueError(f"day-of-week range {span!r} runs backwards")
        days.update(day % 7 for day in range(low, high + 1, step))
    return ",".join(DAY_NAMES[day] for day in sorted(days))


@dataclass(frozen=True)
class TriggerSpec:
    """A schedule's timetable as stored in Redis: ``cron`` or ``interval``, its zone, its anchor."""

    kind: Literal["cron", "interval"]
    expr: str  # the crontab string, or the interval as given ("15m")
    tz: str = "UTC"
    start_ms: int | None = None  # interval only: the first fire time; later ones are start + k * interval

    @property
    def zone(self) -> tzinfo:
        return parse_zone(self.tz)

    def build(self) -> CronTrigger | IntervalTrigger:
        if self.kind == "interval":
            start = from_ms(self.start_ms or 0, self.zone)
            return IntervalTrigger(seconds=parse_every(self.expr), start_date=start, timezone=self.zone)
        minute, hour, day, month, weekday = self.expr.split()
        return CronTrigger(minute=minute, hour=hour, day=day, month=month,
                           day_of_week=crontab_weekdays(weekday), timezone=self.zone)  # fmt: skip

    def next_after(self, ms: int) -> int | None:
        """The first fire time strictly after ``ms`` (epoch ms), or None if there is none."""
        nxt = self.build().get_next_fire_time(None, from_ms(ms + 1, self.zone))
        return None if nxt is None else to_ms(nxt)

    def count_between(self, after_ms: int, before_ms: int, cap: int = 10_000) -> int:
        """How many fire times lie strictly between two instants (at most ``cap``)."""
        trigger, count = self.build(), 0
        moment = trigger.get_next_fire_time(None, from_ms(after_ms + 1, self.zone))
        while moment is not None and to_ms(moment) < before_ms and count < cap:
            count += 1
            moment = trigger.get_next_fire_time(moment, moment)
        return count

    def describe(self) -> str:
        if self.kind == "interval":
            return f"every {self.expr}"
        return f"cron {self.expr}" + ("" if self.tz == "UTC" else f" {self.tz}")

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"kind": self.kind, "expr": self.expr, "tz": self.tz}
        if self.start_ms is not None:
            doc["start_ms"] = self.start_ms
        return doc

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> TriggerSpec:
        return cls(doc["kind"], doc["expr"], doc.get("tz", "UTC"), doc.get("start_ms"))


def parse_trigger(cron: str | None, every: str | None, tz: str, now: float) -> TriggerSpec:
    """Validate ``--cron`` or ``--every`` (exactly one) and ``--tz``; ``now`` anchors an interval."""
    if (cron is None) == (every is None):
        raise UsageError("give exactly one of --cron 'M H DOM MON DOW' or --every N[s|m|h|d]")
    parse_zone(tz)
    if every is not None:
        seconds = parse_every(every)
        # Anchor on a whole second so fire times read cleanly; the first fire is one interval away.
        spec = TriggerSpec("interval", every.strip().lower(), tz, (math.ceil(now) + seconds) * 1000)
    else:
        expr = " ".join((cron or "").split())
        if len(expr.split()) != 5:
            raise UsageError(f"--cron {cron!r}: expected {CRON_HELP}")
        spec = TriggerSpec("cron", expr, tz)
        try:
            spec.build()
        except ValueError as exc:
            raise UsageError(f"--cron {cron!r}: {exc} ({CRON_HELP})") from None
    if spec.next_after(round(now * 1000)) is None:
        raise UsageError(f"--cron {cron!r} never fires (no such date)")
    return spec
