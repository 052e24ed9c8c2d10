"""The dashboard's actions (POST): cancel and retry a job or a selection of jobs, retry and delete dead
letters (a selection, or all), cancel a workflow. Each answers with a flash message saying what it
did; a job that could not be acted on is named with the reason (already ended, no dead letter, ...)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, Response

from arq_jobs._api.deps import ApiJobsDep
from arq_jobs._api.jobs import Jobs
from arq_jobs._dashboard import views
from arq_jobs._dashboard.flash import ACTED_EVENT, Flash, Link, answer
from arq_jobs._dashboard.routing import DashboardRoute, describe
from arq_jobs._dashboard.security import require_writable
from arq_jobs._dashboard.templating import Chrome, ChromeDep
from arq_jobs._errors import JobsError
from arq_jobs._jobs.status import JobStatus
from arq_jobs._workflows.status import WorkflowState, WorkflowStatus

router = APIRouter(
    route_class=DashboardRoute, include_in_schema=False, dependencies=[Depends(require_writable)]
)

Selection = Annotated[list[str] | None, Form(description="The selected job ids.")]
Everything = Annotated[bool, Form(alias="all", description="Every dead letter (of `task`, if given).")]
TaskScope = Annotated[str | None, Form(max_length=200)]
Back = Annotated[str | None, Form(alias="next", max_length=2000, description="The page to go back to.")]

MAX_LINKS = 5


def back_to(chrome: Chrome, path: str | None) -> str | None:
    """`path` when it is one of the dashboard's own pages (never another site)."""
    if path and path.startswith(chrome.base + "/") and "//" not in path and "\\" not in path:
        return path
    return None


def done(
    request: Request, chrome: Chrome, flash: Flash, back: str | None, status_code: int = 200
) -> Response:
    """The flash answer to an action that changed something: htmx refreshes the page's regions."""
    headers = {"HX-Trigger": ACTED_EVENT} if status_code < 400 else None
    return answer(
        request, chrome, flash, status_code=status_code, back=back_to(chrome, back), headers=headers
    )


def cancelled_message(status: JobStatus) -> str:
    if status.is_terminal:
        return f"Job {status.job_id} cancelled: it will not run."
    return f"Cancel requested: job {status.job_id} is running and stops within about a second."


def workflow_cancelled_message(status: WorkflowStatus) -> str:
    if status.status is WorkflowState.CANCELLED:
        return (
            f"Workflow {status.workflow_id} cancelled: no further step starts, and running steps stop "
            "within about a second."
        )
    # its last step finished in the same instant
    return f"Workflow {status.workflow_id} ended {status.status.value} before it could be cancelled."


@dataclass
class Tally:
    """What a bulk action did: how many it acted on, links to show, and the errors met."""

    count: int = 0
    links: list[Link] = field(default_factory=list)
    errors: list[JobsError] = field(default_factory=list)

    async def each(self, ids: list[str], act: Callable[[str], Awaitable[Link | None]]) -> Tally:
        for job_id in dict.fromkeys(ids):
            try:
                link = await act(job_id)
            except JobsError as error:
                self.errors.append(error)
                continue
            self.count += 1
            if link is not None:
                self.links.append(link)
        return self

    def flash(self, did: str, noun: str) -> tuple[Flash, int]:
        """The flash saying what was done, and the status: 200 unless nothing could be done."""
        message = f"{did} {self.count} {noun}{'' if self.count == 1 else 's'}."
        problems = tuple(str(e) for e in self.errors)
        links = tuple(self.links) if len(self.links) <= MAX_LINKS else ()
        if not self.errors:
            return Flash("success", message, links), 200
        if self.count:
            return Flash("warning", f"{message} {len(self.errors)} could not be:", links, problems), 200
        status_code = describe(self.errors[0])[0]
        return Flash("error", f"Nothing {did.lower()}:", (), problems), status_code


def nothing_selected(
    request: Request, chrome: Chrome, noun: str, back: str | None, every: bool = False
) -> Response:
    if every:
        flash = Flash("warning", f"There is no {noun} to act on.")
        return answer(request, chrome, flash, title="Nothing to do", back=back_to(chrome, back))
    flash = Flash("error", f"Select at least one {noun} first.")
    return answer(
        request, chrome, flash, status_code=422, title="Nothing selected", back=back_to(chrome, back)
    )


@router.post("/jobs/{job_id}/cancel", name="dashboard_cancel_job")
async def cancel_job(
    request: Request, job_id: str, jobs: ApiJobsDep, chrome: ChromeDep, back: Back = None
) -> Response:
    status = await jobs.cancel(job_id)
    flash = Flash("success", cancelled_message(status), (Link(chrome.url("jobs", job_id), "open the job"),))
    return done(request, chrome, flash, back)


@router.post("/jobs/{job_id}/retry", name="dashboard_retry_job")
async def retry_job(
    request: Request, job_id: str, jobs: ApiJobsDep, chrome: ChromeDep, back: Back = None
) -> Response:
    job = await jobs.retry_dead_letter(job_id)
    link = Link(chrome.url("jobs", job.job_id), "open the new job")
    return done(
        request, chrome, Flash("success", f"Job {job_id} retried as new job {job.job_id}.", (link,)), back
    )


@router.post("/workflows/{workflow_id}/cancel", name="dashboard_cancel_workflow")
async def cancel_workflow(
    request: Request, workflow_id: str, jobs: ApiJobsDep, chrome: ChromeDep, back: Back = None
) -> Response:
    status = await jobs.cancel_workflow(workflow_id)
    link = Link(chrome.url("workflows", workflow_id), "open the workflow")
    return done(request, chrome, Flash("success", workflow_cancelled_message(status), (link,)), back)


@router.post("/jobs/cancel", name="dashboard_cancel_jobs")
async def cancel_jobs(
    request: Request, jobs: ApiJobsDep, chrome: ChromeDep, job_id: Selection = None, back: Back = None
) -> Response:
    if not job_id:
        return nothing_selected(request, chrome, "job", back)

    async def cancel(one: str) -> Link:
        return Link(chrome.url("jobs", one), (await jobs.cancel(one)).job_id)

    flash, status_code = (await Tally().each(job_id, cancel)).flash("Cancelled", "job")
    return done(request, chrome, flash, back, status_code)


async def retry_each(
    request: Request, jobs: Jobs, chrome: Chrome, ids: list[str], back: str | None
) -> Response:
    async def retry(one: str) -> Link:
        job = await jobs.retry_dead_letter(one)
        return Link(chrome.url("jobs", job.job_id), job.job_id)

    flash, status_code = (await Tally().each(ids, retry)).flash("Retried", "dead letter")
    return done(request, chrome, flash, back, status_code)


@router.post("/jobs/retry", name="dashboard_retry_jobs")
async def retry_jobs(
    request: Request, jobs: ApiJobsDep, chrome: ChromeDep, job_id: Selection = None, back: Back = None
) -> Response:
    if not job_id:
        return nothing_selected(request, chrome, "job", back)
    return await retry_each(request, jobs, chrome, job_id, back)


async def chosen_dead_letters(
    jobs: Jobs, job_id: list[str] | None, every: bool, task: str | None
) -> list[str]:
    """The selected dead letters, or with `every` all of them (of `task`, if given)."""
    return await views.dead_letter_ids(jobs, task or None) if every else list(job_id or [])


@router.post("/dead-letters/retry", name="dashboard_retry_dead_letters")
async def retry_dead_letters(
    request: Request,
    jobs: ApiJobsDep,
    chrome: ChromeDep,
    job_id: Selection = None,
    every: Everything = False,
    task: TaskScope = None,
    back: Back = None,
) -> Response:
    ids = await chosen_dead_letters(jobs, job_id, every, task)
    if not ids:
        return nothing_selected(request, chrome, "dead letter", back, every)
    return await retry_each(request, jobs, chrome, ids, back)


@router.post("/dead-letters/delete", name="dashboard_delete_dead_letters")
async def delete_dead_letters(
    request: Request,
    jobs: ApiJobsDep,
    chrome: ChromeDep,
    job_id: Selection = None,
    every: Everything = False,
    task: TaskScope = None,
    back: Back = None,
) -> Response:
    ids = await chosen_dead_letters(jobs, job_id, every, task)
    if not ids:
        return nothing_selected(request, chrome, "dead letter", back, every)

    async def delete(one: str) -> None:
        await jobs.dead_letters.delete(one)

    flash, status_code = (await Tally().each(ids, delete)).flash("Deleted", "dead letter")
    return done(request, chrome, flash, back, status_code)
