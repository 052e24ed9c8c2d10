"""`GET /jobs/{job_id}/events`: a job's state changes and progress as Server-Sent Events.

Each event has `id:` (resume with `Last-Event-ID`), `event:` (the state entered, or `progress`) and
`data:` (the job's status JSON as of that event). The stream ends after the terminal event; while
idle it sends a `: ping` comment every `JOBS_SSE_PING_S`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.responses import StreamingResponse

from arq_jobs._api.deps import ApiJobsDep, SettingsDep
from arq_jobs._api.errors import ApiRoute
from arq_jobs._api.jobs import Jobs
from arq_jobs._api.schemas import ErrorBody
from arq_jobs._config import Settings
from arq_jobs._jobs.events import JobEvent

router = APIRouter(route_class=ApiRoute, tags=["jobs"])

STREAM_ID = r"^[0-9]{1,20}(-[0-9]{1,20})?$"


def frame(event: JobEvent) -> str:
    return f"id: {event.id}\nevent: {event.event}\ndata: {event.status.model_dump_json()}\n\n"


async def stream(
    jobs: Jobs, settings: Settings, request: Request, job_id: str, after: str
) -> AsyncIterator[str]:
    # each read blocks for less than the Redis socket timeout (and at most 1 s), and the loop checks
    # for a client that left at least that often; a stopping server cancels open streams after
    # uvicorn's timeout_graceful_shutdown (5 s, app/__main__.py)
    block_ms = max(100, min(round(settings.sse_ping_s * 1000), round(settings.redis_timeout_s * 500), 1000))
    last_sent = time.monotonic()
    first = True
    while True:
        events = await jobs.events.read(job_id, after, block_ms=None if first else block_ms)
        for event in events:
            after = event.id
            yield frame(event)
            last_sent = time.monotonic()
            if event.is_last:
                return
        if first and not events and (await jobs.status(job_id)).is_terminal:
            return  # resumed after the end (or the events expired): nothing will follow
        first = False
        if await request.is_disconnected():
            return
        if not events and time.monotonic() - last_sent >= settings.sse_ping_s:
            yield ": ping\n\n"
            last_sent = time.monotonic()
        await asyncio.sleep(0)


@router.get(
    "/jobs/{job_id}/events",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "The job's events"},
        404: {"model": ErrorBody, "description": "Unknown job id"},
    },
)
async def job_events(
    job_id: str,
    jobs: ApiJobsDep,
    settings: SettingsDep,
    request: Request,
    last_event_id: Annotated[
        str | None, Header(alias="Last-Event-ID", pattern=STREAM_ID, description="Resume after this event.")
    ] = None,
) -> StreamingResponse:
    """Server-Sent Events of one job, from its first event (or after `Last-Event-ID`) to its last."""
    await jobs.status(job_id)  # 404 for an unknown job, before the stream starts
    return StreamingResponse(
        stream(jobs, settings, request, job_id, last_event_id or "0"),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
