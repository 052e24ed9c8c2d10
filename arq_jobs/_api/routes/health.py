"""Liveness and readiness probes, and whether every queue with due jobs has a live worker."""

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from arq_jobs._api.auth import requires
from arq_jobs._api.deps import ApiJobsDep, ArqDep
from arq_jobs._api.errors import ApiRoute
from arq_jobs._api.schemas import AUTH_ERRORS, ErrorBody, Health, QueueHealth, WorkersHealth
from arq_jobs._auth.scopes import METRICS_READ

router = APIRouter(route_class=ApiRoute, prefix="/health", tags=["health"])


@router.get("/live", name="health_live")
async def live() -> Health:
    """The process answers."""
    return Health(status="ok")


@router.get(
    "/ready",
    name="health_ready",
    responses={503: {"model": ErrorBody, "description": "Redis is unreachable"}},
)
async def ready(arq: ArqDep) -> Health:
    """Redis answers (else 503)."""
    await arq.ping()
    return Health(status="ok", redis="ok")


@router.get(
    "/workers",
    name="health_workers",
    response_model=WorkersHealth,
    dependencies=[requires(METRICS_READ)],
    responses={
        **AUTH_ERRORS,
        503: {"model": WorkersHealth, "description": "Some queue has pending jobs and no live worker"},
    },
)
async def workers(jobs: ApiJobsDep) -> WorkersHealth | JSONResponse:
    """200 when every queue with pending (due) jobs has a live worker; else 503 naming the starved
    queues. `skew` says how the live workers' task code differs from the API's (it alone never makes
    a 503: the guard refuses the jobs they cannot run)."""
    alive = [w for w in await jobs.workers() if w.state == "alive"]
    queues = [
        QueueHealth(name=q.name, pending=q.pending, workers=q.workers) for q in await jobs.queues(alive)
    ]
    starved = [q.name for q in queues if q.pending > 0 and q.workers == 0]
    skew = jobs.skew(alive)
    if not starved:
        return WorkersHealth(status="ok", starved_queues=[], queues=queues, skew=skew)
    body = WorkersHealth(
        status="starved",
        starved_queues=starved,
        queues=queues,
        error="starved_queues",
        message=f"pending jobs and no live worker in queue(s): {', '.join(starved)}",
        skew=skew,
    )
    return JSONResponse(body.model_dump(mode="json"), status_code=503)
