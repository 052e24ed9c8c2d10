"""`/dead-letters`: jobs that failed for good; look at them, retry them as new jobs, or delete them."""

from typing import Annotated

from fastapi import APIRouter, Query, Response

from arq_jobs._api.deps import ApiJobsDep
from arq_jobs._api.errors import ApiRoute
from arq_jobs._api.schemas import EnqueuedJob, ErrorBody
from arq_jobs._clock import now_ms
from arq_jobs._deadletters import DeadLetter, DeadLetterPage
from arq_jobs._jobs.paging import CURSOR_PATTERN

router = APIRouter(route_class=ApiRoute, prefix="/dead-letters", tags=["dead letters"])

NOT_FOUND: dict[int | str, dict[str, object]] = {
    404: {"model": ErrorBody, "description": "No dead letter for that job id"},
    422: {"model": ErrorBody, "description": "Invalid request"},
}


@router.get("", responses={422: {"model": ErrorBody, "description": "Invalid limit, cursor or task"}})
async def list_dead_letters(
    jobs: ApiJobsDep,
    limit: Annotated[int, Query(ge=1, le=500, description="Page size.")] = 50,
    cursor: Annotated[
        str | None, Query(pattern=CURSOR_PATTERN, description="`next_cursor` of the previous page.")
    ] = None,
    task: Annotated[str | None, Query(max_length=200, description="Only this task's dead letters.")] = None,
) -> DeadLetterPage:
    """Dead letters, newest first."""
    return await jobs.dead_letters.page(limit=limit, cursor=cursor, task=task, now_ms=now_ms())


@router.get("/{job_id}", responses=NOT_FOUND)
async def get_dead_letter(job_id: str, jobs: ApiJobsDep) -> DeadLetter:
    """One dead letter: task, input, error with traceback, attempts, times, last worker."""
    return await jobs.dead_letters.get(job_id)


@router.post(
    "/{job_id}/retry",
    status_code=202,
    responses={
        404: {"model": ErrorBody, "description": "No dead letter for that job id, or its task is gone"},
        422: {"model": ErrorBody, "description": "The stored input no longer fits the task's model"},
    },
)
async def retry_dead_letter(job_id: str, jobs: ApiJobsDep, response: Response) -> EnqueuedJob:
    """Enqueue the dead letter's task and input again as a new job (`retry_of` links back); the
    dead letter is removed."""
    job = await jobs.retry_dead_letter(job_id)
    response.headers["Location"] = job.status_url
    return job


@router.delete("/{job_id}", status_code=204, responses=NOT_FOUND)
async def delete_dead_letter(job_id: str, jobs: ApiJobsDep) -> Response:
    """Forget a dead letter."""
    await jobs.dead_letters.delete(job_id)
    return Response(status_code=204)
