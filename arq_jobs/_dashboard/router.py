"""The dashboard's router: its pages and actions under `JOBS_DASHBOARD_PREFIX`, behind the admin auth
dependency (an `admin` key) and the same-origin guard."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from arq_jobs._api.auth import DashboardAuth
from arq_jobs._config import Settings
from arq_jobs._dashboard import actions, pages
from arq_jobs._dashboard.security import require_same_origin


def build_router(settings: Settings) -> APIRouter:
    router = APIRouter(dependencies=[DashboardAuth, Depends(require_same_origin)], include_in_schema=False)
    router.include_router(actions.router, prefix=settings.dashboard_prefix)
    # last: it ends with the catch-all "no such page"
    router.include_router(pages.router, prefix=settings.dashboard_prefix)
    return router
