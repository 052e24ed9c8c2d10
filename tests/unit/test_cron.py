"""Cron expressions: parsing, the next tick (seconds, names, steps, the day rule), DST, errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from arq_jobs._schedules.cron import Cron

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, micro: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)


def ticks(cron: Cron, start: datetime, count: int) -> list[datetime]:
    found = []
    for _ in range(count):
        start = cron.next_after(start)
        found.append(start)
    return found


def test_five_fields_tick_on_the_minute_and_the_next_is_strictly_after() -> None:
    cron = Cron("*/15 * * * *")
    assert cron.next_after(utc(2024, 5, 6, 10, 7, 30)) == utc(2024, 5, 6, 10, 15)
    assert cron.next_after(utc(2024, 5, 6, 10, 15)) == utc(2024, 5, 6, 10, 30)
    assert cron.next_after(utc(2024, 5, 6, 23, 59, 59, 999999)) == utc(2024, 5, 7, 0, 0)
    assert cron.next_after(utc(2024, 5, 6, 10, 15)).tzinfo is UTC


def test_six_fields_put_the_seconds_first() -> None:
    assert ticks(Cron("*/20 * * * * *"), utc(2024, 5, 6, 10, 0, 5), 4) == [
        utc(2024, 5, 6, 10, 0, 20), utc(2024, 5, 6, 10, 0, 40), utc(2024, 5, 6, 10, 1), utc(2024, 5, 6, 10, 1, 20)
    ]  # fmt: skip
    assert ticks(Cron("* * * * * *"), utc(2024, 12, 31, 23, 59, 58, 500), 2) == [
        utc(2024, 12, 31, 23, 59, 59), utc(2025, 1, 1)
    ]  # fmt: skip
    assert Cron("30 0 12 * * *").next_after(utc(2024, 5, 6, 12, 0, 30)) == utc(2024, 5, 7, 12, 0, 30)


def test_ranges_steps_and_lists() -> None:
    start = utc(2024, 5, 6, 0, 0)
    assert [t.minute for t in ticks(Cron("5-20/5 0 * * *"), start, 4)] == [5, 10, 15, 20]
    assert [t.minute for t in ticks(Cron("50/4 0 * * *"), start, 3)] == [50, 54, 58]  # from 50 to the end
    assert [t.hour for t in ticks(Cron("0 1,3,20-21 * * *"), start, 5)] == [1, 3, 20, 21, 1]
    assert [t.second for t in ticks(Cron("0,30 * * * * *"), start, 3)] == [30, 0, 30]


def test_month_and_weekday_names_any_case_and_sunday_as_0_or_7() -> None:
    # 2024-05-06 is a Monday
    weekdays = ticks(Cron("0 9 * * MON-fri"), utc(2024, 5, 10, 10), 2)
    assert weekdays == [utc(2024, 5, 13, 9), utc(2024, 5, 14, 9)]  # Friday 10:00 -> Monday, Tuesday
    assert Cron("0 0 1 jul,DEC *").next_after(utc(2024, 7, 2)) == utc(2024, 12, 1)
    sundays = {Cron(f"0 0 * * {day}").next_after(utc(2024, 5, 6)) for day in ("0", "7", "sun")}
    assert sundays == {utc(2024, 5, 12)}
    assert Cron("0 0 * * 5-7").next_after(utc(2024, 5, 11, 1)) == utc(2024, 5, 12)  # Sat 01:00 -> Sunday


def test_both_day_fields_restricted_means_either_one_restricted_means_both() -> None:
    # the 13th or a Friday: Fri 2024-09-06, Fri 09-13, then the 13th of a month that is not a Friday
    assert ticks(Cron("0 0 13 * fri"), utc(2024, 9, 1), 4) == [
        utc(2024, 9, 6), utc(2024, 9, 13), utc(2024, 9, 20), utc(2024, 9, 27)
    ]  # fmt: skip
    assert Cron("0 0 13 * fri").next_after(utc(2024, 10, 12)) == utc(2024, 10, 13)  # a Sunday
    # a field starting with * only narrows the other: odd days that are Fridays
    assert ticks(Cron("0 0 */2 * fri"), utc(2024, 9, 1), 3) == [
        utc(2024, 9, 13),
        utc(2024, 9, 27),
        utc(2024, 10, 11),
    ]
    assert Cron("0 0 * * fri").next_after(utc(2024, 9, 7)) == utc(2024, 9, 13)
    assert Cron("0 0 29 2 *").next_after(utc(2024, 3, 1)) == utc(2028, 2, 29)


def test_matches_a_minute_by_minute_check_over_several_days() -> None:
    cron = Cron("*/7 3-5 * * mon,wed")
    start = utc(2024, 5, 5)
    minutes = (start + timedelta(minutes=n) for n in range(1, 6 * 24 * 60))
    expected = [t for t in minutes if t.minute % 7 == 0 and 3 <= t.hour <= 5 and t.weekday() in (0, 2)]
    assert len(expected) == 2 * 3 * 9  # Monday and Wednesday, three hours, minutes 0,7,...,56
    assert ticks(cron, start, len(expected)) == expected


@pytest.mark.parametrize(
    ("alias", "after", "expected"),
    [
        ("@yearly", utc(2024, 5, 6), utc(2025, 1, 1)),
        ("@annually", utc(2024, 5, 6), utc(2025, 1, 1)),
        ("@monthly", utc(2024, 5, 6), utc(2024, 6, 1)),
        ("@weekly", utc(2024, 5, 6), utc(2024, 5, 12)),
        ("@daily", utc(2024, 5, 6, 0, 0, 1), utc(2024, 5, 7)),
        ("@midnight", utc(2024, 5, 6, 0, 0, 1), utc(2024, 5, 7)),
        ("@hourly", utc(2024, 5, 6, 10, 30), utc(2024, 5, 6, 11)),
        ("@HOURLY", utc(2024, 5, 6, 10, 30), utc(2024, 5, 6, 11)),
    ],
)
def test_aliases(alias: str, after: datetime, expected: datetime) -> None:
    assert Cron(alias).next_after(after) == expected


def test_keyword_fields_start_the_smaller_fields_at_zero() -> None:
    assert Cron.fields(hour=3).expression == "0 0 3 * * *"
    assert Cron.fields(second="*/10").expression == "*/10 * * * * *"
    assert Cron.fields(minute=30).expression == "0 30 * * * *"
    assert Cron.fields(day_of_week="mon-fri", hour=9).expression == "0 0 9 * * mon-fri"
    assert Cron.fields(day_of_week="sun").expression == "0 0 0 * * sun"
    assert Cron.fields(month="jun").expression == "0 0 0 1 jun *"
    assert Cron.fields().expression == "* * * * * *"
    nine = Cron.fields(hour=9, timezone="Europe/Paris", input={"n": 1}, name="morning")
    assert (nine.timezone, nine.input, nine.name) == ("Europe/Paris", {"n": 1}, "morning")
    assert nine.next_after(utc(2024, 1, 10, 12)) == utc(2024, 1, 11, 8)
    with pytest.raises(ValueError, match="hour field '25'"):
        Cron.fields(hour=25)


def test_a_timezone_moves_the_tick_with_its_offset() -> None:
    nine = Cron("0 9 * * *", timezone="Europe/Paris")
    assert nine.next_after(utc(2024, 1, 10, 12)) == utc(2024, 1, 11, 8)  # CET, +01:00
    assert nine.next_after(utc(2024, 7, 10, 12)) == utc(2024, 7, 11, 7)  # CEST, +02:00
    # an aware moment in any zone is the same instant
    assert nine.next_after(datetime(2024, 7, 10, 14, tzinfo=PARIS)) == utc(2024, 7, 11, 7)


def test_spring_forward_skips_a_wall_time_that_does_not_exist() -> None:
    # Paris, 2024-03-31: 02:00 CET jumps to 03:00 CEST, so 02:30 does not exist that day
    daily = Cron("30 2 * * *", timezone="Europe/Paris")
    assert ticks(daily, utc(2024, 3, 29, 12), 3) == [
        utc(2024, 3, 30, 1, 30), utc(2024, 4, 1, 0, 30), utc(2024, 4, 2, 0, 30)
    ]  # fmt: skip
    hourly = Cron("0 * * * *", timezone="Europe/Paris")
    local = [t.astimezone(PARIS).strftime("%H:%M%z") for t in ticks(hourly, utc(2024, 3, 30, 23, 30), 3)]
    assert local == ["01:00+0100", "03:00+0200", "04:00+0200"]


def test_fall_back_fires_a_repeated_wall_time_once() -> None:
    # Paris, 2024-10-27: 03:00 CEST goes back to 02:00 CET, so 02:30 happens twice
    daily = Cron("30 2 * * *", timezone="Europe/Paris")
    assert ticks(daily, utc(2024, 10, 26, 12), 2) == [utc(2024, 10, 27, 0, 30), utc(2024, 10, 28, 1, 30)]
    # asked during the second 02:xx, the next is tomorrow's
    assert daily.next_after(utc(2024, 10, 27, 1, 10)) == utc(2024, 10, 28, 1, 30)
    ny = Cron("30 1 * * *", timezone="America/New_York")
    assert ticks(ny, utc(2024, 11, 2, 12), 2) == [utc(2024, 11, 3, 5, 30), utc(2024, 11, 4, 6, 30)]


def test_fall_back_keeps_an_every_hour_schedule_in_real_time() -> None:
    half_hourly = Cron("*/30 * * * *", timezone="Europe/Paris")
    found = ticks(half_hourly, utc(2024, 10, 26, 23, 50), 6)
    assert found == [utc(2024, 10, 27, 0, 0) + timedelta(minutes=30 * n) for n in range(6)]
    local = [t.astimezone(PARIS).strftime("%H:%M%z") for t in found]
    assert local == ["02:00+0200", "02:30+0200", "02:00+0100", "02:30+0100", "03:00+0100", "03:30+0100"]
    # every second through New York's repeated hour: each real second exactly once
    every_second = Cron("* * * * * *", timezone="America/New_York")
    start = datetime(2024, 11, 3, 0, 59, 58, tzinfo=NEW_YORK)
    found = ticks(every_second, start, 2 * 3600 + 4)
    assert found == [start.astimezone(UTC) + timedelta(seconds=n + 1) for n in range(2 * 3600 + 4)]


def test_latest_tick_in_a_window() -> None:
    cron = Cron("*/5 * * * *")
    now = utc(2024, 5, 6, 12, 7, 3)
    assert cron.latest_at_or_before(now, not_before=utc(2024, 5, 6, 9)) == utc(2024, 5, 6, 12, 5)
    assert cron.latest_at_or_before(now, not_before=utc(2024, 5, 6, 12, 5)) == utc(2024, 5, 6, 12, 5)
    assert cron.latest_at_or_before(now, not_before=utc(2024, 5, 6, 12, 5, 1)) is None
    assert cron.latest_at_or_before(utc(2024, 5, 6, 12, 10), not_before=utc(2024, 1, 1)) == utc(
        2024, 5, 6, 12, 10
    )
    every_second = Cron("* * * * * *")
    late = utc(2024, 5, 6, 12, 0, 0) + timedelta(days=40, microseconds=300)
    assert every_second.latest_at_or_before(late, not_before=utc(2024, 5, 6, 12)) == late.replace(
        microsecond=0
    )


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        (
            "* * *",
            "expected 5 fields (minute hour day-of-month month day-of-week) or 6 with the seconds first, got 3",
        ),
        (
            "* * * * * * *",
            "expected 5 fields (minute hour day-of-month month day-of-week) or 6 with the seconds first, got 7",
        ),
        (
            "",
            "expected 5 fields (minute hour day-of-month month day-of-week) or 6 with the seconds first, got 0",
        ),
        ("60 * * * *", "minute field '60': 60 is out of range 0-59"),
        ("* 24 * * *", "hour field '24': 24 is out of range 0-23"),
        ("0 0 0 * *", "day-of-month field '0': 0 is out of range 1-31"),
        ("60 * * * * *", "second field '60': 60 is out of range 0-59"),
        ("* * * 13 *", "month field '13': 13 is out of range 1-12"),
        ("* * * * 8", "day-of-week field '8': 8 is out of range 0-7"),
        ("*/0 * * * *", "minute field '*/0': the step '0' must be a whole number above 0"),
        ("*/x * * * *", "minute field '*/x': the step 'x' must be a whole number above 0"),
        ("30-10 * * * *", "minute field '30-10': the range '30-10' runs backwards"),
        ("1,,2 * * * *", "minute field '1,,2': '' is not a number 0-59"),
        ("? * * * *", "minute field '?': '?' is not a number 0-59"),
        (
            "* * * * funday",
            "day-of-week field 'funday': 'funday' is not a number 0-7 or a name (sun, mon, tue, wed, thu, fri, sat)",
        ),
        ("0 0 30 feb *", "no date ever matches it"),
        (
            "@every_minute",
            "expected 5 fields (minute hour day-of-month month day-of-week) or 6 with the seconds first, got 1",
        ),
    ],
)
def test_a_bad_expression_is_a_value_error_naming_the_field(expression: str, message: str) -> None:
    with pytest.raises(ValueError) as refused:
        Cron(expression)
    assert str(refused.value) == f"invalid cron expression {expression!r}: {message}"


def test_question_mark_stands_for_any_day() -> None:
    assert Cron("0 0 ? * mon").next_after(utc(2024, 5, 7)) == utc(2024, 5, 13)


@pytest.mark.parametrize("name", ["Mars/Olympus", "", "../etc/passwd", "utc+2"])
def test_an_unknown_timezone_is_a_value_error(name: str) -> None:
    with pytest.raises(ValueError) as refused:
        Cron("* * * * *", timezone=name)
    assert (
        str(refused.value) == f"unknown timezone {name!r}: use an IANA name such as 'Europe/Paris' or 'UTC'"
    )


def test_next_after_needs_an_aware_moment() -> None:
    with pytest.raises(ValueError, match="aware datetime"):
        Cron("* * * * *").next_after(datetime(2024, 5, 6))
