"""An example of enqueueing from your own route: `POST /reports` validates its own request, enqueues
`generate_report` through the typed `Jobs` facade and answers 202 with the URL to poll."""

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from arq_jobs import NotFoundError
from arq_jobs.fastapi import ErrorBody, JobsDep, requires
from workers.tasks.reports import Report, ReportInput, generate_report

router = APIRouter(prefix="/reports", tags=["reports (example)"])


class ReportNotFoundError(NotFoundError):
    code = "report_not_found"

    def __init__(self, report_id: str) -> None:
        super().__init__(f"no report {report_id!r}: not generated yet, failed, or expired")
        self.report_id = report_id

    def details(self) -> dict[str, Any]:
        return {"report_id": self.report_id}


class ReportRequest(BaseModel):
    rows: int = Field(default=10_000, ge=1, le=500_000, description="Rows to build the report from.")
    seed: int = Field(default=0, description="Seed of the generated data.")


class ReportAccepted(BaseModel):
    report_id: str
    job_id: str
    status_url: str
    report_url: str


@router.post(
    "",
    status_code=202,
    dependencies=[requires("jobs:enqueue:generate_report")],  # the API's keys guard this route too
    responses={
        401: {"model": ErrorBody},
        403: {"model": ErrorBody},
        422: {"model": ErrorBody},
        503: {"model": ErrorBody},
    },
)
async def create_report(
    body: ReportRequest, jobs: JobsDep, request: Request, response: Response
) -> ReportAccepted:
    """Start building a report; poll `status_url`, then read it at `report_url`."""
    job = await jobs.enqueue(generate_report, ReportInput(rows=body.rows, seed=body.seed))
    response.headers["Location"] = job.status_url
    return ReportAccepted(
        report_id=job.job_id,
        job_id=job.job_id,
        status_url=job.status_url,
        report_url=str(request.url_for("get_report", report_id=job.job_id)),
    )


@router.get(
    "/{report_id}",
    dependencies=[requires("jobs:read")],
    responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}, 404: {"model": ErrorBody}},
)
async def get_report(report_id: str, jobs: JobsDep) -> Report:
    """The finished report (of a job the key can see: its own, or any for `admin`)."""
    try:
        await jobs.status(report_id)  # another key's report is as unknown as a missing one
    except NotFoundError:
        raise ReportNotFoundError(report_id) from None
    raw = await jobs.redis.get(jobs.keys.report(report_id))
    if raw is None:
        raise ReportNotFoundError(report_id)
    return Report.model_validate_json(raw)
