"""`Jobs`: the typed facade routes use to enqueue jobs and read their status."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from arq.connections import ArqRedis
from fastapi import Request

from arq_jobs._api.schemas import BatchJob, EnqueuedBatch, EnqueuedJob, WorkflowAccepted
from arq_jobs._auth.scopes import Principal, enqueue_scope
from arq_jobs._client import Enqueued, JobClient
from arq_jobs._clock import now_ms
from arq_jobs._deadletters import DeadLetter, DeadLetterPage, DeadLetterStore
from arq_jobs._errors import (
    DeadLetterNotFoundError,
    JobNotFoundError,
    PermissionDeniedError,
    WorkflowNotFoundError,
)
from arq_jobs._jobs.events import EventReader
from arq_jobs._jobs.listing import JobPage
from arq_jobs._jobs.states import JobState
from arq_jobs._jobs.status import JobStatus
from arq_jobs._keys import Keys
from arq_jobs._queues import QueueStats
from arq_jobs._stats.reader import Stats
from arq_jobs._stats.window import Window
from arq_jobs._tasks.registry import InputT, Step, Task
from arq_jobs._version_guard import Skew
from arq_jobs._worker_registry import WorkerInfo
from arq_jobs._workflows.engine import Workflows
from arq_jobs._workflows.spec import Group, Workflow
from arq_jobs._workflows.status import WorkflowStatus

STATUS_ROUTE = "get_job"


class Jobs:
    """Enqueue typed jobs from a route and read their status; URLs are built from the request (or
    JOBS_PUBLIC_URL).

    With a `principal` (the API key a request of the API's own routes was authenticated as) it acts
    for that key: jobs and workflows it makes are the key's (`owner`), and it sees only the key's own
    ones, another owner's answering exactly as an unknown id; an `admin` key sees every one. Without
    one (`JobsDep` in a route of yours, or authentication off) it sees everything."""

    def __init__(
        self, client: JobClient, request: Request, prefix: str = "", principal: Principal | None = None
    ) -> None:
        self.client = client
        self.request = request
        self.prefix = prefix.strip("/")
        self.principal = principal

    @property
    def owner(self) -> str | None:
        """The owner of what this facade makes: the principal's name."""
        return None if self.principal is None else self.principal.name

    @property
    def only_owner(self) -> str | None:
        """The owner whose jobs alone this facade sees; None: every one's."""
        return None if self.principal is None or self.principal.is_admin else self.principal.name

    def sees(self, owner: str | None) -> bool:
        return self.principal is None or self.principal.owns(owner)

    async def enqueue(
        self,
        task: Task[InputT, Any],
        data: InputT,
        *,
        delay: float | timedelta | None = None,
        run_at: datetime | None = None,
        idempotency_key: str | None = None,
        queue: str | None = None,
    ) -> EnqueuedJob:
        """Enqueue `task` with `data` (an instance of the task's input model), on its own queue or
        on `queue` (one of the configured queues, else UnknownQueueError). With an
        `idempotency_key`, a repeat of the same request answers with the first one's job
        (`idempotent_replay`, its current status) and a different request raises
        IdempotencyConflictError."""
        job = await self.client.enqueue(
            task,
            data,
            delay=delay,
            run_at=run_at,
            idempotency_key=idempotency_key,
            queue=queue,
            owner=self.owner,
        )
        return await self.replay(job) if job.replayed else self.answer(job)

    async def enqueue_many(
        self,
        task: Task[InputT, Any],
        items: Sequence[InputT],
        *,
        delay: float | timedelta | None = None,
        run_at: datetime | None = None,
        idempotency_key: str | None = None,
        queue: str | None = None,
        max_item_bytes: int | None = None,
    ) -> EnqueuedBatch:
        """Enqueue one job of `task` per input of `items` (1 to 1,000 instances of the task's input
        model), all in one Redis call and all or none, on its own queue or on `queue`; `delay`,
        `run_at` as for one job. A bad input raises TaskInputError naming each by its index
        (`max_item_bytes`: the most bytes one input may have as JSON), a full queue QueueFullError (the
        batch counts whole). An `idempotency_key` covers the batch: a repeat answers with the first
        one's jobs (`idempotent_replay`), another request with it raises IdempotencyConflictError."""
        jobs = await self.client.enqueue_many(
            task,
            items,
            delay=delay,
            run_at=run_at,
            idempotency_key=idempotency_key,
            queue=queue,
            owner=self.owner,
            max_item_bytes=max_item_bytes,
        )
        first = jobs[0]
        urls = self.status_urls([job.job_id for job in jobs])
        return EnqueuedBatch(
            task=first.task,
            status=None if first.replayed else first.status,
            scheduled_for=first.scheduled_for,
            jobs=[BatchJob(job_id=job.job_id, status_url=url) for job, url in zip(jobs, urls, strict=True)],
            idempotent_replay=first.replayed,
        )

    def answer(self, job: Enqueued) -> EnqueuedJob:
        return EnqueuedJob(
            job_id=job.job_id,
            task=job.task,
            status=job.status,
            status_url=self.status_url(job.job_id),
            scheduled_for=job.scheduled_for,
            retry_of=job.retry_of,
        )

    async def replay(self, job: Enqueued) -> EnqueuedJob:
        """The earlier job an Idempotency-Key names, with its current status."""
        try:
            current: JobStatus | None = await self.client.status(job.job_id)
        except JobNotFoundError:
            current = None
        return EnqueuedJob(
            job_id=job.job_id,
            task=job.task,
            status=current.status if current else None,
            status_url=self.status_url(job.job_id),
            scheduled_for=current.scheduled_for if current else None,
            retry_of=current.retry_of if current else None,
            idempotent_replay=True,
        )

    @property
    def redis(self) -> ArqRedis:
        """The app's Redis pool (for data of your own next to the jobs')."""
        return self.client.redis

    @property
    def keys(self) -> Keys:
        """The deployment's Redis key layout (`JOBS_KEY_PREFIX`)."""
        return self.client.keys

    async def status(self, job_id: str) -> JobStatus:
        """The job's status; raises JobNotFoundError for an unknown id (or another owner's)."""
        status = await self.client.status(job_id)
        if not self.sees(status.owner):
            raise JobNotFoundError(job_id)
        return status

    async def cancel(self, job_id: str) -> JobStatus:
        """Cancel a job that has not ended; see JobClient.cancel."""
        await self.status(job_id)
        return await self.client.cancel(job_id)

    async def retry_dead_letter(self, job_id: str) -> EnqueuedJob:
        """Enqueue a dead letter again as a new job (`retry_of` = the old id), for the same owner."""
        await self.dead_letter(job_id)
        return self.answer(await self.client.retry_dead_letter(job_id))

    @property
    def dead_letters(self) -> DeadLetterStore:
        """Every owner's dead letters (the dead-letter routes go through the methods below)."""
        return self.client.dead_letters

    async def dead_letter(self, job_id: str) -> DeadLetter:
        """One dead letter; DeadLetterNotFoundError for an unknown id (or another owner's)."""
        letter = await self.client.dead_letters.get(job_id)
        if not self.sees(letter.owner):
            raise DeadLetterNotFoundError(job_id)
        return letter

    async def dead_letter_page(self, *, limit: int, cursor: str | None, task: str | None) -> DeadLetterPage:
        """Dead letters newest first (this facade's owner's only)."""
        return await self.client.dead_letters.page(
            limit=limit, cursor=cursor, task=task, now_ms=now_ms(), owner=self.only_owner
        )

    async def delete_dead_letter(self, job_id: str) -> None:
        await self.dead_letter(job_id)
        await self.client.dead_letters.delete(job_id)

    async def jobs(
        self,
        *,
        state: JobState | None = None,
        task: str | None = None,
        queue: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> JobPage:
        """Jobs newest first (by run time) matching the filters; see JobClient.jobs."""
        return await self.client.jobs(
            state=state, task=task, queue=queue, limit=limit, cursor=cursor, owner=self.only_owner
        )

    async def workers(self) -> list[WorkerInfo]:
        return await self.client.workers()

    async def queues(self, alive: Sequence[WorkerInfo] | None = None) -> list[QueueStats]:
        return await self.client.queues(alive)

    async def stats(self, window: Window, *, task: str | None = None, queue: str | None = None) -> Stats:
        """How jobs went over `window`, of one task and/or queue if given (every owner's: statistics are
        not kept per API key); see JobClient.stats."""
        return await self.client.stats(window, task=task, queue=queue)

    def skew(self, alive: Sequence[WorkerInfo]) -> Skew:
        """How the live workers' task code differs from this API's."""
        return self.client.skew(alive)

    @property
    def events(self) -> EventReader:
        return self.client.events

    async def chain(self, *steps: Step[Any] | Group) -> WorkflowAccepted:
        """Run `steps` one after another, each given the previous one's result; a step may be a
        `group(...)` of steps run in parallel (the next step gets their results as a list):
        `await jobs.chain(fetch.step(FetchInput(url=url)), parse.step())`. Only the first step takes
        an input. InvalidWorkflowError (naming the step) before anything is enqueued."""
        return await self.start_workflow(Workflow.chain(*steps))

    async def group(self, *steps: Step[Any]) -> WorkflowAccepted:
        """Run `steps` in parallel; the workflow's result is their results, in order."""
        return await self.start_workflow(Workflow.group(*steps))

    async def chord(self, steps: Sequence[Step[Any]], callback: Step[Any]) -> WorkflowAccepted:
        """Run `steps` in parallel, then `callback` (given no input) with the list of their results."""
        return await self.start_workflow(Workflow.chord(steps, callback))

    async def start_workflow(self, workflow: Workflow) -> WorkflowAccepted:
        """Create a built workflow (`Workflow.chain/group/chord`, or `Workflow.from_json`); with a
        principal, each step's task needs its enqueue scope (PermissionDeniedError naming it)."""
        if self.principal is not None:
            for stage in workflow.stages:
                for placed in stage.steps:
                    if not self.principal.allows(enqueue_scope(placed.step.task.name)):
                        raise PermissionDeniedError(self.principal.name, enqueue_scope(placed.step.task.name))
        workflow_id = await self.workflows.create(workflow, owner=self.owner)
        return WorkflowAccepted(workflow_id=workflow_id, status_url=self.workflow_url(workflow_id))

    async def workflow(self, workflow_id: str) -> WorkflowStatus:
        """The workflow's state and each step's; raises WorkflowNotFoundError for an unknown id (or
        another owner's)."""
        status = await self.workflows.status(workflow_id)
        if not self.sees(status.owner):
            raise WorkflowNotFoundError(workflow_id)
        return status

    async def cancel_workflow(self, workflow_id: str) -> WorkflowStatus:
        """Cancel what has not finished; see Workflows.cancel."""
        await self.workflow(workflow_id)
        return await self.workflows.cancel(workflow_id)

    @property
    def workflows(self) -> Workflows:
        return Workflows(self.client)

    @property
    def base(self) -> str:
        """The URL the API's routes start from: JOBS_PUBLIC_URL (else the request's base URL) and
        install()'s prefix."""
        public = self.client.settings.public_url
        root = str(self.request.base_url) if public is None else str(public).rstrip("/") + "/"
        return f"{root}{self.prefix}/" if self.prefix else root

    def workflow_url(self, workflow_id: str) -> str:
        return f"{self.base}workflows/{quote(workflow_id, safe='')}"

    def status_url(self, job_id: str) -> str:
        """`request.url_for(STATUS_ROUTE, job_id=...)` without its search through every route."""
        return self.status_urls([job_id])[0]

    def status_urls(self, job_ids: Sequence[str]) -> list[str]:
        """`status_url` of each job (the base built once)."""
        base = f"{self.base}jobs/"
        return [base + quote(job_id, safe="") for job_id in job_ids]
