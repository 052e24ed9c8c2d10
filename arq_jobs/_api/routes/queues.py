"""`GET /queues`: every queue's counts by state, oldest pending age and live workers."""

from __future__ import annotations

from fastapi import APIRouter

from arq_jobs._api.auth import requires
from arq_jobs._api.deps import ApiJobsDep
from arq_jobs._api.errors import ApiRoute
from arq_jobs._api.schemas import AUTH_ERRORS
from arq_jobs._auth.scopes import METRICS_READ
from arq_jobs._queues import QueueStats

router = APIRouter(route_class=ApiRoute, tags=["queues"])


@router.get("/queues", dependencies=[requires(METRICS_READ)], responses=AUTH_ERRORS)
async def list_queues(jobs: ApiJobsDep) -> list[QueueStats]:
    """Each queue (the configured ones, `JOBS_QUEUES`, then any other a live worker serves): pending,
    scheduled, running, retrying, kept succeeded/failed/cancelled, dead-lettered, oldest pending age,
    workers."""
    return await jobs.queues()
