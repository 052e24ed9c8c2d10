"""`GET /jobs/{job_id}/events`: a job's state changes and progress as Server-Sent Events.

Each event has `id:` (resume with `Last-Event-ID`), `event:` (the state entered, or `progress`) and
`data:` (the job's status JSON as of that event). The stream ends after the terminal event; while
idle it sends a `: ping` comment every `JOBS_SSE_PING_S`. One API process serves at most
`JOBS_SSE_MAX_STREAMS` streams (more: 503 `too_many_streams` with `Retry-After`), which share one
Redis connection (arq_jobs._jobs.event_hub).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.responses import StreamingResponse
from redis.exceptions import RedisError
from starlette.types import Receive, Scope, Send

from arq_jobs._api.auth import requires
from arq_jobs._api.deps import ApiJobsDep, EventHubDep, SettingsDep
from arq_jobs._api.errors import ApiRoute
from arq_jobs._api.jobs import Jobs
from arq_jobs._api.schemas import AUTH_ERRORS, ErrorBody
from arq_jobs._auth.scopes import JOBS_READ
from arq_jobs._config import Settings
from arq_jobs._jobs.event_hub import Subscription
from arq_jobs._jobs.events import JobEvent, last_event
from arq_jobs._redis_errors import describe_redis_error

log = logging.getLogger(__name__)

router = APIRouter(route_class=ApiRoute, tags=["jobs"])

STREAM_ID = r"^[0-9]{1,20}(-[0-9]{1,20})?$"


def frame(event: JobEvent) -> str:
    return f"id: {event.id}\nevent: {event.event}\ndata: {event.status.model_dump_json()}\n\n"


async def stream(
    subscription: Subscription, jobs: Jobs, settings: Settings, request: Request
) -> AsyncIterator[str]:
    # each wait for events lasts at most 1 s, so the loop checks for a client that left at least that
    # often; a stopping server cancels open streams after uvicorn's timeout_graceful_shutdown (5 s)
    wait_s = max(0.1, min(settings.sse_ping_s, 1.0))
    last_sent = time.monotonic()
    first = True
    from_start = subscription.cursor == "0"
    try:
        while True:
            events = await subscription.next(wait_s)
            for event in events:
                yield frame(event)
                last_sent = time.monotonic()
                if event.is_last:
                    return
            if first and not events:
                status = await jobs.status(subscription.job_id)
                if status.is_terminal:  # resumed after the end, or the ended job's events expired
                    if from_start:
                        yield frame(last_event(status))
                    return
            first = False
            if await request.is_disconnected():
                return
            if not events and time.monotonic() - last_sent >= settings.sse_ping_s:
                yield ": ping\n\n"
                last_sent = time.monotonic()
    except RedisError as exc:  # a catch-up read failed: end the stream, the client resumes from its last id
        log.warning(
            "event stream of job %s ended by a Redis error: %s",
            subscription.job_id,
            describe_redis_error(exc),
        )
    finally:
        subscription.close()


class EventStreamResponse(StreamingResponse):
    """The stream of one subscription, which is closed however the response ends (also unstarted)."""

    def __init__(self, subscription: Subscription, content: AsyncIterator[str]) -> None:
        super().__init__(
            content,
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
        self.subscription = subscription

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.subscription.close()


@router.get(
    "/jobs/{job_id}/events",
    name="job_events",
    response_class=StreamingResponse,
    dependencies=[requires(JOBS_READ)],
    responses={
        **AUTH_ERRORS,
        200: {"content": {"text/event-stream": {}}, "description": "The job's events"},
        404: {"model": ErrorBody, "description": "Unknown job id"},
        503: {
            "model": ErrorBody,
            "description": "This API process already serves JOBS_SSE_MAX_STREAMS streams "
            "(`too_many_streams`, with `Retry-After`), or Redis is unreachable",
        },
    },
)
async def job_events(
    job_id: str,
    jobs: ApiJobsDep,
    settings: SettingsDep,
    hub: EventHubDep,
    request: Request,
    last_event_id: Annotated[
        str | None, Header(alias="Last-Event-ID", pattern=STREAM_ID, description="Resume after this event.")
    ] = None,
) -> StreamingResponse:
    """Server-Sent Events of one job, from its first event (or after `Last-Event-ID`) to its last."""
    subscription = hub.open(job_id, last_event_id or "0")  # 503 before any Redis call when full
    try:
        await jobs.status(job_id)  # 404 for an unknown job, before the stream starts
    except BaseException:
        subscription.close()
        raise
    return EventStreamResponse(subscription, stream(subscription, jobs, settings, request))
