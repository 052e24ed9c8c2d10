"""`GET /workers`: the worker registry — live workers, and recently stale or stopped ones."""

from __future__ import annotations

from fastapi import APIRouter

from arq_jobs._api.auth import requires
from arq_jobs._api.deps import ApiJobsDep
from arq_jobs._api.errors import ApiRoute
from arq_jobs._api.schemas import AUTH_ERRORS
from arq_jobs._auth.scopes import METRICS_READ
from arq_jobs._worker_registry import WorkerInfo

router = APIRouter(route_class=ApiRoute, tags=["workers"])


@router.get("/workers", dependencies=[requires(METRICS_READ)], responses=AUTH_ERRORS)
async def list_workers(jobs: ApiJobsDep) -> list[WorkerInfo]:
    """Every worker seen within `JOBS_WORKER_HISTORY_S`: alive ones first (a heartbeat within 3
    beats), then `stale` (stopped beating: killed or unreachable) and `stopped` (shut down cleanly),
    with host, pid, queues, concurrency, the jobs it runs now and its totals."""
    return await jobs.workers()
