"""The reference deployment's app: the example report routes plus `install(app)`, which adds the job
API, dashboard, metrics and health routes. `uvicorn app.main:create_app --factory` or `python -m app`
serve it."""

from __future__ import annotations

from fastapi import FastAPI

from app.routes import reports
from arq_jobs import Settings
from arq_jobs.fastapi import install, json_errors


def create_app(settings: Settings | None = None) -> FastAPI:
    """The app with its job routes; the task packages come from `JOBS_TASK_PACKAGES`."""
    app = example_app()
    install(app, settings=settings)
    json_errors(app)  # the standalone service answers every error as JSON
    return app


def example_app() -> FastAPI:
    """The app before `install()`: its metadata and the example routes."""
    app = FastAPI(
        title="arq-jobs",
        summary="Typed background jobs on ARQ: enqueue over HTTP, poll for status, progress and results.",
        version="0.1.0",
        redirect_slashes=False,  # DELETE /jobs/ is a missing id (404), not a redirect to GET /jobs
    )
    app.include_router(reports.router)
    return app
