"""A job's events as clients see them: each stream entry (see arq_jobs._jobs.transitions) rebuilt into the
job's status as of that event."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from arq_jobs._jobs.records import JobRecord
from arq_jobs._jobs.states import JobState
from arq_jobs._jobs.status import JobStatus, build_status
from arq_jobs._jobs.transitions import PROGRESS_EVENT
from arq_jobs._keys import Keys
from arq_jobs._serializer import loads

WAITING_EVENTS = frozenset({JobState.PENDING, JobState.SCHEDULED, JobState.RETRYING})
RUNNING_EVENTS = frozenset({JobState.RUNNING, PROGRESS_EVENT})


@dataclass(frozen=True, slots=True)
class JobEvent:
    """One event: its stream id (for Last-Event-ID), its name (a state, or `progress`) and the job's
    status at that moment."""

    id: str
    event: str
    status: JobStatus

    @property
    def is_last(self) -> bool:
        """The job ended with this event: nothing follows."""
        return self.event != PROGRESS_EVENT and self.status.is_terminal


def parse_event(job_id: str, entry_id: bytes | str, fields: dict[bytes, bytes]) -> JobEvent | None:
    """The event of one stream entry; None for an entry that cannot be read."""
    entry = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    data = dict(fields)
    event = data.pop(b"event", b"").decode()
    raw_extra = data.pop(b"extra", b"")
    extra: Any = None
    if raw_extra:
        try:
            extra = loads(raw_extra)
        except ValueError:
            extra = None
    record = JobRecord.from_hash(data)
    if record is None or not event:
        return None
    status = build_status(
        job_id,
        record,
        extra if isinstance(extra, dict) else None,
        in_progress=event in RUNNING_EVENTS,
        queued=event in WAITING_EVENTS,
        now_ms=int(entry.split("-", 1)[0]),
    )
    if status is None:
        return None
    return JobEvent(entry, event, status)


def last_event(status: JobStatus) -> JobEvent:
    """An ended job's last event rebuilt from its status, for when its stream has expired
    (`events_keep_s`): the stream id is the time it ended."""
    ended = status.finished_at or status.enqueued_at
    ms = 0 if ended is None else int(ended.timestamp() * 1000)
    return JobEvent(f"{ms}-0", status.status.value, status)


@dataclass(frozen=True, slots=True)
class EventPage:
    """What one read of a job's stream found: its readable events, the id of the last entry read (of
    an unreadable one too; `after` when none) and whether it read `count` entries (more may follow)."""

    events: list[JobEvent]
    last_id: str
    full: bool


def parse_entries(job_id: str, after: str, entries: list[Any], count: int) -> EventPage:
    """The page of one stream's entries as XREAD returns them."""
    events: list[JobEvent] = []
    last_id = after
    for entry_id, fields in entries:
        last_id = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
        event = parse_event(job_id, entry_id, fields)
        if event is not None:
            events.append(event)
    return EventPage(events, last_id, len(entries) >= count)


class EventReader:
    """Reads a job's events from its stream."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys

    async def read(
        self, job_id: str, after: str, *, block_ms: int | None = None, count: int = 100
    ) -> list[JobEvent]:
        """Events after the stream id `after` ("0" for all), waiting up to `block_ms` for one."""
        return (await self.read_page(job_id, after, block_ms=block_ms, count=count)).events

    async def read_page(
        self, job_id: str, after: str, *, block_ms: int | None = None, count: int = 100
    ) -> EventPage:
        """Up to `count` entries after the stream id `after`, waiting up to `block_ms` for one."""
        replies = await self.redis.xread({self.keys.events(job_id): after}, count=count, block=block_ms)
        entries = [entry for _, stream_entries in replies or [] for entry in stream_entries]
        return parse_entries(job_id, after, entries, count)
