"""How the dashboard writes times and values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from arq_jobs._dashboard.formatting import duration, iso, pretty_json, relative, short_id, snippet

NOW = datetime(2026, 11, 29, 10, 0, 0, tzinfo=UTC)


def test_relative_times_in_the_past_and_future() -> None:
    assert relative(NOW - timedelta(seconds=3.6), NOW) == "3 s ago"
    assert relative(NOW - timedelta(milliseconds=400), NOW) == "just now"
    assert relative(NOW - timedelta(minutes=5, seconds=59), NOW) == "5 min ago"
    assert relative(NOW - timedelta(hours=3), NOW) == "3 h ago"
    assert relative(NOW - timedelta(days=2, hours=23), NOW) == "2 d ago"
    assert relative(NOW + timedelta(minutes=59, seconds=59), NOW) == "in 59 min"


def test_durations() -> None:
    assert duration(0.42, precise=True) == "0.4 s" and duration(0.42) == "0 s"
    assert duration(12.7, precise=True) == "12 s"
    assert duration(3600) == "1 h" and duration(-90) == "1 min"


def test_iso_is_utc_to_the_millisecond() -> None:
    local = datetime(2026, 11, 29, 11, 0, 0, 123456, tzinfo=timezone(timedelta(hours=1)))
    assert iso(local) == "2026-11-29T10:00:00.123Z"


def test_snippets_ids_and_json() -> None:
    assert snippet("first line\nsecond") == "first line"
    assert snippet("x" * 100, 10) == "x" * 9 + "…"
    assert snippet(None) == "" and snippet("  ") == ""
    assert short_id("0123456789abcdef0123456789abcdef") == "01234567…" and short_id("job-1") == "job-1"
    assert pretty_json({"b": 1, "a": "é"}) == '{\n  "b": 1,\n  "a": "é"\n}'
