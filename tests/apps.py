"""The reference app (`app.main`) built with a given task registry, for tests."""

from __future__ import annotations

from fastapi import FastAPI

from app.main import example_app
from arq_jobs._api.errors import json_errors
from arq_jobs._api.install import mount
from arq_jobs._config import Settings
from arq_jobs._tasks.registry import TaskRegistry


def create_app(settings: Settings, registry: TaskRegistry) -> FastAPI:
    """What `app.main.create_app(settings)` builds, with `registry` instead of JOBS_TASK_PACKAGES'."""
    app = example_app()
    mount(app, settings, registry)
    json_errors(app)
    return app
