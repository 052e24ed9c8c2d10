"""`Jobs`: the typed facade routes use to enqueue jobs and read their status."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from fastapi import Request

from app.schemas import EnqueuedJob
from jobcore.client import JobClient
from jobcore.registry import InputT, Task
from jobcore.status import JobStatus

STATUS_ROUTE = "get_job"


class Jobs:
    """Enqueue typed jobs from a route and read their status; URLs are built from the request."""

    def __init__(self, client: JobClient, request: Request) -> None:
        self.client = client
        self.request = request

    async def enqueue(
        self,
        task: Task[InputT, Any],
        data: InputT,
        *,
        delay: float | timedelta | None = None,
        run_at: datetime | None = None,
    ) -> EnqueuedJob:
        """Enqueue `task` with `data` (an instance of the task's input model)."""
        job = await self.client.enqueue(task, data, delay=delay, run_at=run_at)
        return EnqueuedJob(
            job_id=job.job_id,
            task=job.task,
            status=job.status,
            status_url=self.status_url(job.job_id),
            scheduled_for=job.scheduled_for,
        )

    async def status(self, job_id: str) -> JobStatus:
        """The job's status; raises JobNotFoundError for an unknown id."""
        return await self.client.status(job_id)

    def status_url(self, job_id: str) -> str:
        return str(self.request.url_for(STATUS_ROUTE, job_id=job_id))
