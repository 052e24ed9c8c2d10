"""Listing jobs newest first (by run time), filtered by state, task and queue, paged by cursor:
read from the indexes arq_jobs._jobs.transitions maintains, never by scanning keys."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from pydantic import BaseModel, Field
from redis.asyncio import Redis

from arq_jobs._jobs.paging import walk
from arq_jobs._jobs.states import JobState
from arq_jobs._jobs.status import JobStatus
from arq_jobs._jobs.transitions import Phase
from arq_jobs._keys import Keys
from arq_jobs._serializer import dumps

PHASE_OF = {
    JobState.PENDING: Phase.QUEUED,
    JobState.SCHEDULED: Phase.QUEUED,
    JobState.RETRYING: Phase.QUEUED,
    JobState.RUNNING: Phase.RUNNING,
    JobState.SUCCEEDED: Phase.SUCCEEDED,
    JobState.FAILED: Phase.FAILED,
    JobState.CANCELLED: Phase.CANCELLED,
}

LARGE_RESULT_BYTES = 1024


class JobListItem(JobStatus):
    result_omitted: bool = Field(
        default=False,
        description=f"The result is larger than {LARGE_RESULT_BYTES} bytes: read it with GET /jobs/{{id}}.",
    )


class JobPage(BaseModel):
    items: list[JobListItem]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null at the end. With filters a page may "
        "hold fewer than `limit` items and still have a next cursor."
    )


def index_for(
    keys: Keys, state: JobState | None, task: str | None, queue: str | None, owner: str | None = None
) -> str:
    """The smallest index that holds every job matching the filters; an owner's own index whenever
    one is given, so that a page (and its cursor) never touches another owner's job."""
    if owner is not None:
        return keys.index("owner", owner)
    if state is not None:
        phase = PHASE_OF[state].value
        return keys.index("phase", phase if queue is None else f"{phase}:queue:{queue}")
    if queue is not None:
        return keys.index("queue", queue)
    if task is not None:
        return keys.index("task", task)
    return keys.index("all")


async def list_jobs(
    redis: Redis,
    keys: Keys,
    statuses: Callable[[Sequence[str]], Awaitable[list[JobStatus | None]]],
    *,
    state: JobState | None,
    task: str | None,
    queue: str | None,
    limit: int,
    cursor: str | None,
    owner: str | None = None,
) -> JobPage:
    """Jobs newest first matching every filter given (`owner`: only jobs that API key made);
    `statuses` reads a batch of job statuses."""

    async def load(ids: Sequence[str]) -> list[JobListItem | None]:
        return [None if status is None else list_item(status) for status in await statuses(ids)]

    def keep(item: JobListItem) -> bool:
        return (
            (state is None or item.status is state)
            and (task is None or item.task == task)
            and (queue is None or item.queue == queue)
            and (owner is None or item.owner == owner)
        )

    found = await walk(
        redis, index_for(keys, state, task, queue, owner), limit=limit, cursor=cursor, load=load, keep=keep
    )
    return JobPage(items=found.items, next_cursor=found.next_cursor)


def list_item(status: JobStatus) -> JobListItem:
    """A status as listings show it: a large result is left out."""
    item = JobListItem(**dict(status))
    if status.result is not None and len(dumps(status.result)) > LARGE_RESULT_BYTES:
        item.result = None
        item.result_omitted = True
    return item
