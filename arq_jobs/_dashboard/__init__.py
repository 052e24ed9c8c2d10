"""The operator dashboard: server-rendered pages (Jinja2) refreshed by htmx, served from this package
with no build step and no CDN. `build_router(settings)` mounts it under `JOBS_DASHBOARD_PREFIX`."""

from arq_jobs._dashboard.router import build_router

__all__ = ["build_router"]
