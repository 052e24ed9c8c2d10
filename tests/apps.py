"""The reference app (`app.main`) built with a given task registry, for tests."""

from __future__ import annotations

from fastapi import FastAPI

from app.routes import reports
from arq_jobs._api.errors import json_errors
from arq_jobs._api.install import mount
from arq_jobs._config import Settings
from arq_jobs._tasks.registry import TaskRegistry


def create_app(settings: Settings, registry: TaskRegistry) -> FastAPI:
    """What `app.main.create_app(settings)` builds, with `registry` instead of JOBS_TASK_PACKAGES'."""
    app = FastAPI(title="arq-jobs", version="0.1.0", redirect_slashes=False)
    app.include_router(reports.router)
    mount(app, settings, registry)
    json_errors(app)
    return app
