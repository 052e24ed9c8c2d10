"""`GET /schedules`: the tasks' periodic schedules, their next tick and their last run."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter
from pydantic import BaseModel

from arq_jobs._api.auth import requires
from arq_jobs._api.deps import ApiJobsDep
from arq_jobs._api.errors import ApiRoute
from arq_jobs._api.schemas import AUTH_ERRORS
from arq_jobs._auth.scopes import METRICS_READ
from arq_jobs._schedules.views import ScheduleView, schedule_views

router = APIRouter(route_class=ApiRoute, tags=["schedules"])


class ScheduleList(BaseModel):
    schedules: list[ScheduleView]


@router.get("/schedules", dependencies=[requires(METRICS_READ)], responses=AUTH_ERRORS)
async def list_schedules(jobs: ApiJobsDep) -> ScheduleList:
    """Every schedule the tasks declare: task, cron expression, timezone, queue, whether it is
    enabled (`JOBS_DISABLED_SCHEDULES`), its next tick, and the job its latest fired tick made with
    that job's state now."""
    return ScheduleList(schedules=await schedule_views(jobs.client, datetime.now(UTC)))
