"""`/dead-letters`: jobs that failed for good; look at them, retry them as new jobs, or delete them."""

from typing import Annotated

from fastapi import APIRouter, Query, Response

from arq_jobs._api.auth import requires
from arq_jobs._api.deps import ApiJobsDep
from arq_jobs._api.errors import ApiRoute
from arq_jobs._api.schemas import AUTH_ERRORS, QUEUE_FULL, EnqueuedJob, ErrorBody
from arq_jobs._auth.scopes import DEAD_LETTERS_READ, DEAD_LETTERS_WRITE
from arq_jobs._deadletters import DeadLetter, DeadLetterPage
from arq_jobs._jobs.paging import CURSOR_PATTERN

router = APIRouter(route_class=ApiRoute, prefix="/dead-letters", tags=["dead letters"])

NOT_FOUND: dict[int | str, dict[str, object]] = {
    **AUTH_ERRORS,
    404: {"model": ErrorBody, "description": "No dead letter for that job id"},
    422: {"model": ErrorBody, "description": "Invalid request"},
}


@router.get(
    "",
    dependencies=[requires(DEAD_LETTERS_READ)],
    responses={**AUTH_ERRORS, 422: {"model": ErrorBody, "description": "Invalid limit, cursor or task"}},
)
async def list_dead_letters(
    jobs: ApiJobsDep,
    limit: Annotated[int, Query(ge=1, le=500, description="Page size.")] = 50,
    cursor: Annotated[
        str | None, Query(pattern=CURSOR_PATTERN, description="`next_cursor` of the previous page.")
    ] = None,
    task: Annotated[str | None, Query(max_length=200, description="Only this task's dead letters.")] = None,
) -> DeadLetterPage:
    """Dead letters, newest first."""
    return await jobs.dead_letter_page(limit=limit, cursor=cursor, task=task)


@router.get("/{job_id}", dependencies=[requires(DEAD_LETTERS_READ)], responses=NOT_FOUND)
async def get_dead_letter(job_id: str, jobs: ApiJobsDep) -> DeadLetter:
    """One dead letter: task, input, error with traceback, attempts, times, last worker."""
    return await jobs.dead_letter(job_id)


@router.post(
    "/{job_id}/retry",
    status_code=202,
    dependencies=[requires(DEAD_LETTERS_WRITE)],
    responses={
        **AUTH_ERRORS,
        404: {"model": ErrorBody, "description": "No dead letter for that job id, or its task is gone"},
        422: {"model": ErrorBody, "description": "The stored input no longer fits the task's model"},
        **QUEUE_FULL,
    },
)
async def retry_dead_letter(job_id: str, jobs: ApiJobsDep, response: Response) -> EnqueuedJob:
    """Enqueue the dead letter's task and input again as a new job (`retry_of` links back); the
    dead letter is removed (kept when its queue is full: 429)."""
    job = await jobs.retry_dead_letter(job_id)
    response.headers["Location"] = job.status_url
    return job


@router.delete("/{job_id}", status_code=204, dependencies=[requires(DEAD_LETTERS_WRITE)], responses=NOT_FOUND)
async def delete_dead_letter(job_id: str, jobs: ApiJobsDep) -> Response:
    """Forget a dead letter."""
    await jobs.delete_dead_letter(job_id)
    return Response(status_code=204)
