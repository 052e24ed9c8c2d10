"""`GET /stats`: how jobs went over a window — a series of points and a per-task table (arq_jobs._stats)."""

from typing import Annotated

from fastapi import APIRouter, Query

from arq_jobs._api.auth import requires
from arq_jobs._api.deps import ApiJobsDep
from arq_jobs._api.errors import ApiRoute
from arq_jobs._api.schemas import AUTH_ERRORS, ErrorBody
from arq_jobs._auth.scopes import METRICS_READ
from arq_jobs._stats.reader import Stats
from arq_jobs._stats.window import Window

router = APIRouter(route_class=ApiRoute, tags=["stats"])


@router.get(
    "/stats",
    dependencies=[requires(METRICS_READ)],
    responses={
        **AUTH_ERRORS,
        404: {"model": ErrorBody, "description": "No task of that name, and none with statistics"},
        422: {"model": ErrorBody, "description": "Invalid window; unknown queue"},
    },
)
async def get_stats(
    jobs: ApiJobsDep,
    window: Annotated[
        Window,
        Query(
            description="How far back: one point per minute up to 1h, per hour "
            "for 24h and 7d, per 6 hours for 30d."
        ),
    ] = Window.HOUR_1,
    task: Annotated[
        str | None, Query(min_length=1, max_length=200, description="Only this task's jobs.")
    ] = None,
    queue: Annotated[
        str | None, Query(min_length=1, max_length=200, description="Only this queue's jobs and depth.")
    ] = None,
) -> Stats:
    """Jobs succeeded, failed, retried, cancelled and dead-lettered per interval, with run-time and wait
    percentiles and the queues' sampled depth, and each task's totals over the window (every API key's
    jobs: statistics are not kept per key). Kept JOBS_STATS_MINUTES_TTL_S by the minute and
    JOBS_STATS_HOURS_TTL_S by the hour."""
    return await jobs.stats(window, task=task, queue=queue)
