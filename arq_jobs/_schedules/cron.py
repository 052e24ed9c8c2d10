"""Cron schedules declared with a task: `@task(schedule=Cron("*/5 * * * *", timezone="Europe/Paris"))`.

An expression has 5 fields (minute hour day-of-month month day-of-week) or 6 with the seconds first
(as cron-parser/BullMQ, Spring and Quartz): `*`, `n`, `a-b`, `*/n`, `a-b/n`, `a/n` (from a to the
field's end) and lists of these (`1,15,30-35`); month names `jan`..`dec`, weekday names `sun`..`sat`,
0 and 7 both Sunday, `?` as `*` in the day fields; or one of `@yearly` (`@annually`), `@monthly`,
`@weekly`, `@daily` (`@midnight`), `@hourly`. `Cron.fields(hour=3, minute=30)` builds one from
keyword fields.

Days follow classic (Vixie) cron: when both day-of-month and day-of-week are restricted a day matching
either runs; when one starts with `*` (`*`, `*/2`) a day must match both.

Ticks are whole seconds of the wall clock in `timezone` (an IANA name). Across DST changes: a wall time
that does not exist (spring forward) is skipped; one that happens twice (fall back) fires once, at its
first occurrence — except for schedules whose hour field is every hour, which keep their real-time
rhythm through the repeated hour (an every-10-minutes job does not pause for an hour), as Vixie cron
does for its wildcard jobs.
"""

from __future__ import annotations

import bisect
import calendar
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
MONTH_NAMES = {
    name: n
    for n, name in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), start=1
    )
}
WEEKDAY_NAMES = {name: n for n, name in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}
# a possible expression matches within one Gregorian cycle (400 years) of any moment
SEARCH_YEARS = 401
ONE_SECOND = timedelta(seconds=1)


@dataclass(frozen=True, slots=True)
class _Field:
    name: str
    low: int
    high: int
    names: Mapping[str, int] = field(default_factory=dict)


SECOND = _Field("second", 0, 59)
MINUTE = _Field("minute", 0, 59)
HOUR = _Field("hour", 0, 23)
DAY = _Field("day-of-month", 1, 31)
MONTH = _Field("month", 1, 12, MONTH_NAMES)
WEEKDAY = _Field("day-of-week", 0, 7, WEEKDAY_NAMES)
FIELDS = (SECOND, MINUTE, HOUR, DAY, MONTH, WEEKDAY)


@dataclass(frozen=True, slots=True)
class _Spec:
    """An expression parsed: the sorted values each field allows."""

    seconds: tuple[int, ...]
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: tuple[int, ...]
    weekdays: frozenset[int]  # 0 = Sunday
    days_or: bool  # both day fields restricted: a day matching either runs

    @property
    def every_hour(self) -> bool:
        return len(self.hours) == 24

    def day_matches(self, day: date) -> bool:
        in_month = day.day in self.days
        in_week = (day.weekday() + 1) % 7 in self.weekdays
        return in_month or in_week if self.days_or else in_month and in_week

    def next_wall(self, after: datetime) -> datetime | None:
        """The first naive wall time strictly after `after` that the fields allow (None: none within
        the search horizon)."""
        start = after.replace(microsecond=0) + ONE_SECOND
        for year in range(start.year, min(start.year + SEARCH_YEARS, datetime.max.year + 1)):
            for month in self.months:
                if (year, month) < (start.year, start.month):
                    continue
                first_day = start.day if (year, month) == (start.year, start.month) else 1
                for day in range(first_day, calendar.monthrange(year, month)[1] + 1):
                    if not self.day_matches(date(year, month, day)):
                        continue
                    from_start = (year, month, day) == (start.year, start.month, start.day)
                    found = self._time_from(
                        *((start.hour, start.minute, start.second) if from_start else (0, 0, 0))
                    )
                    if found is not None:
                        return datetime(year, month, day, *found)
        return None

    def _time_from(self, hour: int, minute: int, second: int) -> tuple[int, int, int] | None:
        """The first allowed (hour, minute, second) at or after the one given, on the same day."""
        for h in self.hours[bisect.bisect_left(self.hours, hour) :]:
            m0 = minute if h == hour else 0
            for m in self.minutes[bisect.bisect_left(self.minutes, m0) :]:
                s0 = second if (h, m) == (hour, minute) else 0
                at = bisect.bisect_left(self.seconds, s0)
                if at < len(self.seconds):
                    return h, m, self.seconds[at]
        return None


@dataclass(frozen=True)
class Cron:
    """When a task runs by itself, with which input, under which schedule name.

    `expression`: see the module docstring; `timezone`: an IANA name (`Europe/Paris`); `input`: the
    task's input (validated against its model when the registry loads); `name`: the schedule's name
    (default: the task's name; `<task>-<n>` for the n-th of several). A bad expression or timezone is
    a ValueError here, when the Cron is built.
    """

    expression: str
    timezone: str = "UTC"
    input: Mapping[str, Any] = field(default_factory=dict)
    name: str | None = None
    _spec: _Spec = field(init=False, repr=False, compare=False)
    _zone: tzinfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_spec", parse(self.expression))
        object.__setattr__(self, "_zone", zone(self.timezone))

    @classmethod
    def fields(
        cls,
        *,
        second: int | str | None = None,
        minute: int | str | None = None,
        hour: int | str | None = None,
        day: int | str | None = None,
        month: int | str | None = None,
        day_of_week: int | str | None = None,
        timezone: str = "UTC",
        input: Mapping[str, Any] | None = None,
        name: str | None = None,
    ) -> Cron:
        """A Cron from keyword fields, each a number or a field's text (`"*/10"`, `"mon-fri"`).

        Fields left out below the largest one given are at their start, above it every value:
        `Cron.fields(hour=3)` is 03:00:00 daily, `Cron.fields(second="*/10")` every 10 seconds,
        `Cron.fields(day_of_week="mon", hour=9)` Mondays at 09:00:00."""
        a_day = day if day is not None else day_of_week
        largest = max(
            (n for n, value in enumerate((second, minute, hour, a_day, month)) if value is not None),
            default=-1,
        )
        parts = [
            str(value) if value is not None else ("0" if n < largest else "*")
            for n, value in enumerate((second, minute, hour))
        ]
        first_of_month = month is not None and a_day is None  # `month=6`: June 1st
        parts.append(str(day) if day is not None else ("1" if first_of_month else "*"))
        parts += ["*" if value is None else str(value) for value in (month, day_of_week)]
        return cls(" ".join(parts), timezone=timezone, input=dict(input or {}), name=name)

    def next_after(self, moment: datetime) -> datetime:
        """The first tick strictly after `moment` (an aware datetime), as an aware UTC datetime."""
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValueError("next_after needs an aware datetime (with a timezone)")
        now = moment.astimezone(UTC)
        local = now.astimezone(self._zone)
        wall = local.replace(tzinfo=None, fold=0)
        found = self._next_from_wall(now, wall)
        if self._spec.every_hour:
            earlier = self._in_repeated_hour(now, found)
            if earlier is not None:
                return earlier
        return found

    def latest_at_or_before(self, moment: datetime, *, not_before: datetime) -> datetime | None:
        """The last tick in [`not_before`, `moment`], or None when there is none: what a scheduler
        that woke late fires (one tick, not every one it missed)."""
        if self.next_after(_ceil_second(not_before) - ONE_SECOND) > moment:
            return None
        # ticks are whole seconds: bisect on the second after which the next tick is still due
        low = int(_ceil_second(not_before).timestamp()) - 1
        high = int(moment.timestamp() // 1)
        while high - low > 1:
            middle = (low + high) // 2
            if self.next_after(datetime.fromtimestamp(middle, UTC)) <= moment:
                low = middle
            else:
                high = middle
        return self.next_after(datetime.fromtimestamp(low, UTC))

    def _next_from_wall(self, now: datetime, wall: datetime) -> datetime:
        """The first tick after `now` among wall times later than `wall`: a wall time that does not
        exist is skipped, a repeated one counts at its first occurrence (and at its second only for
        every-hour schedules)."""
        while True:
            candidate = self._spec.next_wall(wall)
            if candidate is None:
                raise ValueError(f"cron {self.expression!r} has no run within {SEARCH_YEARS} years")
            first = candidate.replace(tzinfo=self._zone, fold=0)
            second = candidate.replace(tzinfo=self._zone, fold=1)
            before, after = first.utcoffset(), second.utcoffset()
            assert before is not None and after is not None
            if before == after:  # an ordinary wall time
                return first.astimezone(UTC)
            if before > after:  # repeated (fall back)
                for occurrence in (first, second) if self._spec.every_hour else (first,):
                    if occurrence.astimezone(UTC) > now:
                        return occurrence.astimezone(UTC)
            wall = candidate  # did not exist (spring forward), or its occurrences are past

    def _in_repeated_hour(self, now: datetime, found: datetime) -> datetime | None:
        """For an every-hour schedule: a tick in the second pass of a repeated hour that falls between
        `now` and `found` (the next tick by wall-clock order, which jumped past it)."""
        offset_now = now.astimezone(self._zone).utcoffset()
        offset_found = found.astimezone(self._zone).utcoffset()
        assert offset_now is not None and offset_found is not None
        if offset_found >= offset_now:
            return None
        # on the clock of the later offset, the repeated hour's walls come in order after `now`
        wall = (now + offset_found).replace(tzinfo=None)
        stop = (found + offset_found).replace(tzinfo=None)
        while (candidate := self._spec.next_wall(wall)) is not None and candidate < stop:
            second = candidate.replace(tzinfo=self._zone, fold=1)
            first = candidate.replace(tzinfo=self._zone, fold=0)
            before, after = first.utcoffset(), second.utcoffset()
            assert before is not None and after is not None
            if before > after and second.astimezone(UTC) > now:
                return second.astimezone(UTC)
            wall = candidate
        return None


def zone(name: str) -> tzinfo:
    """The timezone named `name` (IANA), or a ValueError that says so."""
    if name == "UTC":  # no tz database needed for the default
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown timezone {name!r}: use an IANA name such as 'Europe/Paris' or 'UTC'"
        ) from None


def parse(expression: str) -> _Spec:
    """Parse a cron expression, or raise ValueError naming the field that is wrong."""
    text = ALIASES.get(expression.strip().lower(), expression)
    parts = text.split()
    if len(parts) == 5:
        parts = ["0", *parts]
    elif len(parts) != 6:
        raise ValueError(
            f"invalid cron expression {expression!r}: expected 5 fields (minute hour day-of-month month "
            f"day-of-week) or 6 with the seconds first, got {len(parts)}"
        )
    try:
        values = [_parse_field(part, spec) for part, spec in zip(parts, FIELDS, strict=True)]
    except ValueError as error:
        raise ValueError(f"invalid cron expression {expression!r}: {error}") from None
    seconds, minutes, hours, days, months, weekdays = values
    weekdays = {0 if day == 7 else day for day in weekdays}
    day_star, weekday_star = (parts[n].startswith(("*", "?")) for n in (3, 5))
    spec = _Spec(
        tuple(sorted(seconds)),
        tuple(sorted(minutes)),
        tuple(sorted(hours)),
        frozenset(days),
        tuple(sorted(months)),
        frozenset(weekdays),
        days_or=not (day_star or weekday_star),
    )
    if spec.next_wall(datetime(2000, 1, 1)) is None:
        raise ValueError(f"invalid cron expression {expression!r}: no date ever matches it")
    return spec


def _parse_field(text: str, spec: _Field) -> set[int]:
    values: set[int] = set()
    for item in text.split(","):
        base, slash, step_text = item.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit() or int(step_text) == 0:
                raise ValueError(
                    f"{spec.name} field {text!r}: the step {step_text!r} must be a whole number above 0"
                )
            step = int(step_text)
        top = 6 if spec is WEEKDAY else spec.high  # open ranges of weekdays end on Saturday
        if base == "*" or (base == "?" and spec in (DAY, WEEKDAY)):
            low, high = spec.low, top
        elif "-" in base:
            start, _, end = base.partition("-")
            low, high = _value(start, text, spec), _value(end, text, spec)
            if low > high:
                raise ValueError(f"{spec.name} field {text!r}: the range {base!r} runs backwards")
        else:
            low = _value(base, text, spec)
            high = top if slash else low
        values.update(range(low, high + 1, step))
    return values


def _value(token: str, text: str, spec: _Field) -> int:
    named = spec.names.get(token.lower())
    if named is not None:
        return named
    if not token.isdigit():
        expected = f"a number {spec.low}-{spec.high}"
        if spec.names:
            expected += f" or a name ({', '.join(spec.names)})"
        raise ValueError(f"{spec.name} field {text!r}: {token!r} is not {expected}")
    value = int(token)
    if not spec.low <= value <= spec.high:
        raise ValueError(f"{spec.name} field {text!r}: {value} is out of range {spec.low}-{spec.high}")
    return value


def _ceil_second(moment: datetime) -> datetime:
    whole = moment.replace(microsecond=0)
    return whole if whole == moment else whole + ONE_SECOND
