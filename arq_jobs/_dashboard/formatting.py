"""How the dashboard writes times, durations and values: relative times rendered on the server
("3 s ago", "in 5 min") with the absolute ISO time beside them."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

UNITS = ((86_400, "d"), (3_600, "h"), (60, "min"))


def duration(seconds: float, *, precise: bool = False) -> str:
    """A short length of time: `3 s`, `12 min`, `5 h`, `2 d` (`1.4 s` under 10 s when `precise`)."""
    seconds = abs(seconds)
    for size, unit in UNITS:
        if seconds >= size:
            return f"{int(seconds // size)} {unit}"
    if precise and seconds < 10:
        return f"{seconds:.1f} s"
    return f"{int(seconds)} s"


def relative(moment: datetime, now: datetime) -> str:
    """`3 s ago`, `in 5 min`, or `just now` within a second."""
    delta = (now - moment).total_seconds()
    if abs(delta) < 1:
        return "just now"
    return f"{duration(delta)} ago" if delta > 0 else f"in {duration(delta)}"


def iso(moment: datetime) -> str:
    """The absolute time in UTC, ISO 8601 to the millisecond: `2026-11-29T10:04:05.123Z`."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def snippet(text: str | None, limit: int = 90) -> str:
    """The first line of `text`, cut to `limit` characters."""
    if not text:
        return ""
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def pretty_json(value: Any) -> str:
    """JSON indented for reading (keys in their stored order)."""
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def compact_json(value: Any) -> str:
    """JSON on one line, for a short look at a value in a table cell."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def short_id(job_id: str) -> str:
    """The first 8 characters of a job id (the full id goes in the link and the title)."""
    return job_id if len(job_id) <= 12 else job_id[:8] + "…"
