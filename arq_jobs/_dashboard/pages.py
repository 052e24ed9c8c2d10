"""The dashboard's pages (GET): overview, queue, task, job, dead letters, workers, schedules, workflow.
With `HX-Request` each answers only its live region, which htmx swaps in on refresh.

Charts are drawn over `?window=` (15m, 1h, 24h, 7d, 30d); only the 15-minute window's are part of the
region that refreshes, so a refresh of another window's page does not read its statistics."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import RedirectResponse

from arq_jobs._api.deps import ApiJobsDep, SettingsDep
from arq_jobs._dashboard import views
from arq_jobs._dashboard.assets import static_file
from arq_jobs._dashboard.routing import DashboardRoute
from arq_jobs._dashboard.templating import OVERVIEW_ROUTE, ChromeDep, is_htmx, render_page
from arq_jobs._errors import NotFoundError
from arq_jobs._jobs.paging import CURSOR_PATTERN
from arq_jobs._jobs.states import JobState
from arq_jobs._stats.window import Window

router = APIRouter(route_class=DashboardRoute, include_in_schema=False)

Limit = Annotated[int, Query(ge=1, le=500, description="Page size.")]
Cursor = Annotated[str | None, Query(pattern=CURSOR_PATTERN, description="Where the last page ended.")]
TaskFilter = Annotated[str | None, Query(max_length=200, description="Only this task's.")]
ChartWindow = Annotated[Window, Query(description="How far back the charts look.")]


def charts(request: Request, window: Window) -> bool:
    """Whether to read the statistics: for the whole page, and for a refresh of the live window."""
    return window is views.LIVE_WINDOW or not is_htmx(request)


class PageNotFoundError(NotFoundError):
    code = "page_not_found"

    def __init__(self, path: str) -> None:
        super().__init__(f"the dashboard has no page {path!r}")


@router.get("")
async def without_slash(chrome: ChromeDep) -> Response:
    return RedirectResponse(chrome.base + "/", status_code=308)


@router.get("/", name=OVERVIEW_ROUTE)
async def overview(
    request: Request, jobs: ApiJobsDep, chrome: ChromeDep, window: ChartWindow = views.LIVE_WINDOW
) -> Response:
    view = await views.overview(jobs, window, charts=charts(request, window))
    return render_page(request, chrome, "overview", {"view": view})


@router.get("/queues/{queue}", name="dashboard_queue")
async def queue(
    request: Request,
    queue: str,
    jobs: ApiJobsDep,
    chrome: ChromeDep,
    state: Annotated[JobState | None, Query(description="Only jobs in this state.")] = None,
    task: TaskFilter = None,
    limit: Limit = 50,
    cursor: Cursor = None,
    window: ChartWindow = views.PAGE_WINDOW,
) -> Response:
    view = await views.queue_view(
        jobs,
        queue,
        state=state,
        task=task or None,
        limit=limit,
        cursor=cursor,
        window=window,
        charts=charts(request, window),
    )
    return render_page(request, chrome, "queue", {"view": view})


@router.get("/tasks/{name}", name="dashboard_task")
async def task(
    request: Request, name: str, jobs: ApiJobsDep, chrome: ChromeDep, window: ChartWindow = views.PAGE_WINDOW
) -> Response:
    return render_page(request, chrome, "task", {"view": await views.task_view(jobs, name, window)})


@router.get("/jobs/{job_id}", name="dashboard_job")
async def job(
    request: Request, job_id: str, jobs: ApiJobsDep, chrome: ChromeDep, settings: SettingsDep
) -> Response:
    view = await views.job_view(jobs, job_id, settings.events_maxlen)
    return render_page(request, chrome, "job", {"view": view})


@router.get("/dead-letters", name="dashboard_dead_letters")
async def dead_letters(
    request: Request,
    jobs: ApiJobsDep,
    chrome: ChromeDep,
    task: TaskFilter = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Response:
    view = await views.dead_letters_view(jobs, task=task or None, limit=limit, cursor=cursor)
    return render_page(request, chrome, "dead_letters", {"view": view})


@router.get("/workers", name="dashboard_workers")
async def workers(request: Request, jobs: ApiJobsDep, chrome: ChromeDep) -> Response:
    return render_page(request, chrome, "workers", {"view": await views.workers_view(jobs)})


@router.get("/schedules", name="dashboard_schedules")
async def schedules(request: Request, jobs: ApiJobsDep, chrome: ChromeDep) -> Response:
    return render_page(request, chrome, "schedules", {"schedules": await views.schedules_view(jobs)})


@router.get("/workflows/{workflow_id}", name="dashboard_workflow")
async def workflow(request: Request, workflow_id: str, jobs: ApiJobsDep, chrome: ChromeDep) -> Response:
    return render_page(request, chrome, "workflow", {"view": await views.workflow_view(jobs, workflow_id)})


@router.get("/static/{name}", name="dashboard_static")
async def static(name: str) -> Response:
    return static_file(name)


@router.get("/{path:path}")
async def unknown_page(path: str) -> Response:
    raise PageNotFoundError(path)
