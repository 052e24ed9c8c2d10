"""Liveness and readiness probes."""

from fastapi import APIRouter

from app.deps import ArqDep
from app.schemas import ErrorBody, Health

router = APIRouter(prefix="/health", tags=["health"])


@router.get("/live")
async def live() -> Health:
    """The process answers."""
    return Health(status="ok")


@router.get("/ready", responses={503: {"model": ErrorBody, "description": "Redis is unreachable"}})
async def ready(arq: ArqDep) -> Health:
    """Redis answers (else 503)."""
    await arq.ping()
    return Health(status="ok", redis="ok")
