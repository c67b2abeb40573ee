"""Parsing --cron / --every / --tz, and the fire times every replica derives from them."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from pipeline.core.errors import UsageError
from pipeline.scheduler.triggers import TriggerSpec, crontab_weekdays, from_ms, parse_every, parse_trigger, to_ms

PARIS = ZoneInfo("Europe/Paris")
SATURDAY_NOON = datetime(2026, 11, 21, 12, 0, tzinfo=PARIS).timestamp()


@pytest.mark.parametrize(("text", "seconds"), [("90s", 90), ("15m", 900), ("6h", 21600), ("1d", 86400), ("2M", 120)])
def test_every_takes_seconds_minutes_hours_and_days(text: str, seconds: int) -> None:
    assert parse_every(text) == seconds


@pytest.mark.parametrize("text", ["15", "m", "0m", "1.5h", "15 minutes", "-1s", "1w", ""])
def test_every_refuses_anything_else_with_an_example(text: str) -> None:
    with pytest.raises(UsageError, match=r"e\.g\. 15m"):
        parse_every(text)


@pytest.mark.parametrize(
    ("field", "names"),
    [
        ("1-5", "mon,tue,wed,thu,fri"),
        ("0", "sun"),
        ("7", "sun"),
        ("*/2", "sun,tue,thu,sat"),
        ("fri-sun", "sun,fri,sat"),
        ("5-7", "sun,fri,sat"),
        ("sat,sun", "sun,sat"),
        ("1,3/2", "sun,mon,wed,fri"),  # N/S runs to the end of the week (7 = Sunday), as in cronie
        ("*", "*"),
    ],
)
def test_crontab_weekday_numbers_mean_what_they_mean_in_crontab(field: str, names: str) -> None:
    # APScheduler 3 counts Monday as 0 (agronholm/apscheduler#286); crontab counts Sunday as 0 and 7.
    assert crontab_weekdays(field) == names


@pytest.mark.parametrize("field", ["8", "5-1", "*/0", "funday"])
def test_a_bad_weekday_field_is_refused(field: str) -> None:
    with pytest.raises(ValueError, match="day-of-week"):
        crontab_weekdays(field)


def test_weekdays_1_to_5_fire_monday_morning_in_the_schedules_zone() -> None:
    spec = parse_trigger("0 3 * * 1-5", None, "Europe/Paris", SATURDAY_NOON)
    fire = from_ms(spec.next_after(round(SATURDAY_NOON * 1000)) or 0, PARIS)
    assert (fire.strftime("%A"), fire.hour, fire.minute) == ("Monday", 3, 0)


def test_cron_fire_times_are_the_same_whenever_they_are_computed() -> None:
    # Replicas started at different moments must derive identical instants.
    spec = parse_trigger("*/5 * * * *", None, "UTC", SATURDAY_NOON)
    seen_early = spec.next_after(round(SATURDAY_NOON * 1000))
    seen_late = spec.next_after(round((SATURDAY_NOON + 61) * 1000))
    assert seen_early is not None and seen_late is not None
    assert (seen_late - seen_early) % 300_000 == 0


def test_an_interval_is_anchored_on_a_whole_second_one_interval_after_adding() -> None:
    spec = parse_trigger(None, "15m", "UTC", 1000.2)
    assert spec.start_ms == (1001 + 900) * 1000
    assert spec.next_after((spec.start_ms or 0) - 1) == spec.start_ms
    assert spec.next_after(spec.start_ms or 0) == (spec.start_ms or 0) + 900_000
    assert spec.next_after((spec.start_ms or 0) + 1) == (spec.start_ms or 0) + 900_000


def test_count_between_counts_the_fire_times_strictly_inside() -> None:
    spec = parse_trigger(None, "1s", "UTC", 1000.0)
    start = spec.start_ms or 0
    assert spec.count_between(start, start + 5000) == 4
    assert spec.count_between(start, start + 1000) == 0


@pytest.mark.parametrize(
    ("cron", "message"),
    [
        ("* * * *", "expected 5 fields"),
        ("61 * * * *", "higher than the maximum value"),
        ("0 3 * * 9", "day-of-week"),
        ("0 0 31 2 *", "never fires"),
    ],
)
def test_a_bad_cron_string_is_a_usage_error_saying_what_is_wrong(cron: str, message: str) -> None:
    with pytest.raises(UsageError, match=message) as caught:
        parse_trigger(cron, None, "UTC", SATURDAY_NOON)
    assert caught.value.exit_code == 2


def test_exactly_one_of_cron_and_every_is_required() -> None:
    for cron, every in ((None, None), ("0 3 * * *", "15m")):
        with pytest.raises(UsageError, match="exactly one of --cron"):
            parse_trigger(cron, every, "UTC", SATURDAY_NOON)


def test_an_unknown_time_zone_is_refused() -> None:
    with pytest.raises(UsageError, match="unknown time zone 'Mars/Olympus'"):
        parse_trigger("0 3 * * *", None, "Mars/Olympus", SATURDAY_NOON)


def test_a_trigger_survives_its_json_round_trip() -> None:
    for spec in (parse_trigger("0 3 * * 1-5", None, "Europe/Paris", SATURDAY_NOON),
                 parse_trigger(None, "90s", "UTC", SATURDAY_NOON)):  # fmt: skip
        assert TriggerSpec.from_json(spec.to_json()) == spec


def test_describe_is_short_and_names_a_non_utc_zone() -> None:
    assert parse_trigger(None, "15m", "UTC", 0).describe() == "every 15m"
    assert parse_trigger("0  3 * * *", None, "UTC", 0).describe() == "cron 0 3 * * *"
    assert parse_trigger("0 3 * * *", None, "Europe/Paris", 0).describe() == "cron 0 3 * * * Europe/Paris"


def test_milliseconds_round_trip() -> None:
    moment = datetime(2026, 1, 2, 3, 4, 5, tzinfo=PARIS)
    assert from_ms(to_ms(moment), PARIS) == moment
