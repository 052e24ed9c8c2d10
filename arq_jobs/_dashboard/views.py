"""What each dashboard page shows, read through the app's `Jobs` facade (no Redis access of its own)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import JsonValue

from arq_jobs._api.jobs import Jobs
from arq_jobs._clock import now_ms
from arq_jobs._deadletters import DeadLetter, DeadLetterPage
from arq_jobs._errors import DeadLetterNotFoundError, JobNotFoundError, NotFoundError
from arq_jobs._jobs.details import JobDetails
from arq_jobs._jobs.events import JobEvent
from arq_jobs._jobs.listing import JobPage
from arq_jobs._jobs.states import JobState
from arq_jobs._jobs.status import JobStatus
from arq_jobs._jobs.transitions import PROGRESS_EVENT
from arq_jobs._queues import QueueStats
from arq_jobs._schedules.views import ScheduleView, schedule_views
from arq_jobs._stats.reader import Stats, TaskStats
from arq_jobs._stats.window import Window
from arq_jobs._tasks.registry import Task
from arq_jobs._tasks.retry import qualified_name
from arq_jobs._version_guard import Skew
from arq_jobs._worker_registry import WorkerInfo
from arq_jobs._workflows.status import WorkflowStatus

# the window whose charts refresh with their page; longer ones are drawn once per page load
LIVE_WINDOW = Window.MINUTES_15
PAGE_WINDOW = Window.HOUR_1  # the queue and task pages' default
FAILURES_SCANNED = 100  # the newest dead letters a task page groups by error type


class QueueNotFoundError(NotFoundError):
    code = "queue_not_found"

    def __init__(self, queue: str) -> None:
        super().__init__(f"no queue named {queue!r} (not the default queue, a task's, or a live worker's)")


def counts(queue: QueueStats) -> dict[JobState, int]:
    """A queue's jobs by state."""
    return {state: getattr(queue, state.value) for state in JobState}


def starved(queues: list[QueueStats]) -> list[QueueStats]:
    """Queues with pending jobs and no live worker."""
    return [q for q in queues if q.pending > 0 and q.workers == 0]


@dataclass(frozen=True, slots=True)
class Overview:
    totals: dict[JobState, int]
    dead_letters: int
    workers: list[WorkerInfo]
    queues: list[QueueStats]
    skew: Skew
    window: Window
    stats: Stats | None  # None: not read (an htmx refresh, whose region does not hold the charts)

    @property
    def live(self) -> bool:
        """Whether the charts are part of the region that refreshes."""
        return self.window is LIVE_WINDOW

    @property
    def live_workers(self) -> int:
        return sum(w.state == "alive" for w in self.workers)

    @property
    def starved(self) -> list[QueueStats]:
        return starved(self.queues)

    def counts(self, queue: QueueStats) -> dict[JobState, int]:
        return counts(queue)


async def overview(jobs: Jobs, window: Window = LIVE_WINDOW, *, charts: bool = True) -> Overview:
    """The counts, queues and workers; with `charts`, the statistics of `window` too."""
    workers = await jobs.workers()
    alive = [w for w in workers if w.state == "alive"]
    queues = await jobs.queues(alive)
    totals = {state: sum(counts(q)[state] for q in queues) for state in JobState}
    stats = await jobs.stats(window) if charts else None
    return Overview(
        totals, sum(q.dead_lettered for q in queues), workers, queues, jobs.skew(alive), window, stats
    )


@dataclass(frozen=True, slots=True)
class QueueView:
    stats: QueueStats
    state: JobState | None
    task: str | None
    tasks: list[str]
    limit: int
    cursor: str | None
    page: JobPage
    window: Window
    charted: Stats | None  # the queue's statistics over `window`; None when not read

    @property
    def live(self) -> bool:
        return self.window is LIVE_WINDOW

    @property
    def window_param(self) -> str | None:
        """`window` for links that keep it (None: the default)."""
        return None if self.window is PAGE_WINDOW else self.window.value

    @property
    def counts(self) -> dict[JobState, int]:
        return counts(self.stats)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def starved(self) -> bool:
        return bool(starved([self.stats]))


async def queue_view(
    jobs: Jobs,
    name: str,
    *,
    state: JobState | None,
    task: str | None,
    limit: int,
    cursor: str | None,
    window: Window = PAGE_WINDOW,
    charts: bool = True,
) -> QueueView:
    stats = next((q for q in await jobs.queues() if q.name == name), None)
    if stats is None:
        raise QueueNotFoundError(name)
    settings = jobs.client.settings
    tasks = sorted(t.name for t in jobs.client.registry if t.queue_for(settings) == name)
    page = await jobs.jobs(state=state, task=task, queue=name, limit=limit, cursor=cursor)
    charted = await jobs.stats(window, queue=name) if charts else None
    return QueueView(stats, state, task, tasks, limit, cursor, page, window, charted)


@dataclass(frozen=True, slots=True)
class Moment:
    """One line of a job's timeline."""

    at: datetime
    state: str
    text: str


def event_time(event: JobEvent) -> datetime:
    return datetime.fromtimestamp(int(event.id.split("-", 1)[0]) / 1000, tz=UTC)


def describe_event(event: JobEvent, first: bool) -> str:
    status = event.status
    error = f"{status.error.type}: {status.error.message}" if status.error else ""
    match event.event:
        case JobState.PENDING:
            return "enqueued" if first else "back in the queue, waiting for a worker"
        case JobState.SCHEDULED:
            return "enqueued, scheduled"
        case JobState.RUNNING:
            return f"attempt {status.attempt} started"
        case JobState.RETRYING:
            return f"attempt {status.attempt} failed ({error}); it will be retried"
        case JobState.SUCCEEDED:
            return "succeeded"
        case JobState.FAILED:
            return f"failed ({error})" + (", dead-lettered" if status.dead_lettered else "")
        case JobState.CANCELLED:
            return "cancelled"
    return event.event


def timeline_of_events(events: list[JobEvent]) -> list[Moment]:
    changes = [e for e in events if e.event != PROGRESS_EVENT]
    return [Moment(event_time(e), e.event, describe_event(e, n == 0)) for n, e in enumerate(changes)]


def timeline_of_fields(status: JobStatus | None, letter: DeadLetter | None) -> list[Moment]:
    """A timeline from the times a status (or only a dead letter) keeps, for jobs without events."""
    found: list[Moment] = []
    enqueued = status.enqueued_at if status else letter.enqueued_at if letter else None
    started = status.started_at if status else letter.started_at if letter else None
    attempt = status.attempt if status else letter.attempts if letter else 0
    if enqueued:
        found.append(Moment(enqueued, "pending", "enqueued"))
    if started:
        found.append(Moment(started, "running", f"attempt {attempt} started"))
    if status and status.finished_at and status.is_terminal:
        found.append(Moment(status.finished_at, status.status.value, status.status.value))
    elif letter:
        found.append(Moment(letter.failed_at, "failed", f"failed ({letter.error.type})"))
    return found


@dataclass(frozen=True, slots=True)
class JobView:
    """A job's status (None once its record expired) and its dead letter, if it has one."""

    job_id: str
    status: JobStatus | None
    letter: DeadLetter | None
    details: JobDetails
    timeline: list[Moment]

    @property
    def live(self) -> bool:
        return self.status is not None and not self.status.is_terminal

    @property
    def can_cancel(self) -> bool:
        return self.live

    @property
    def can_retry(self) -> bool:
        return self.letter is not None

    @property
    def input(self) -> JsonValue:
        if self.details.input_kept:
            return self.details.input
        return self.letter.input if self.letter else None

    @property
    def input_kept(self) -> bool:
        return self.details.input_kept or self.letter is not None

    @property
    def traceback(self) -> str | None:
        return self.details.traceback or (self.letter.error.traceback if self.letter else None)


async def job_view(jobs: Jobs, job_id: str, events_limit: int) -> JobView:
    status = (await jobs.client.statuses([job_id]))[0]
    letter = None
    if status is None or status.dead_lettered:
        try:
            letter = await jobs.dead_letters.get(job_id)
        except DeadLetterNotFoundError:
            letter = None
    if status is None and letter is None:
        raise JobNotFoundError(job_id)
    details = await jobs.client.details(job_id)
    events = await jobs.events.read(job_id, "0", count=events_limit) if status else []
    timeline = timeline_of_events(events) or timeline_of_fields(status, letter)
    if status and status.scheduled_for and not status.is_terminal and status.status is JobState.SCHEDULED:
        timeline.append(Moment(status.scheduled_for, "scheduled", "due to run"))
    if status and status.next_attempt_at:
        timeline.append(Moment(status.next_attempt_at, "retrying", f"attempt {status.attempt + 1} may start"))
    return JobView(job_id, status, letter, details, timeline)


@dataclass(frozen=True, slots=True)
class DeadLettersView:
    task: str | None
    tasks: list[str]
    limit: int
    cursor: str | None
    page: DeadLetterPage


async def dead_letters_view(
    jobs: Jobs, *, task: str | None, limit: int, cursor: str | None
) -> DeadLettersView:
    page = await jobs.dead_letters.page(limit=limit, cursor=cursor, task=task, now_ms=now_ms())
    tasks = sorted(t.name for t in jobs.client.registry)
    return DeadLettersView(task, tasks, limit, cursor, page)


async def dead_letter_ids(jobs: Jobs, task: str | None) -> list[str]:
    """Every dead letter's job id (of one task, if given), newest first."""
    found: list[str] = []
    cursor: str | None = None
    while True:
        page = await jobs.dead_letters.page(limit=500, cursor=cursor, task=task, now_ms=now_ms())
        found.extend(letter.job_id for letter in page.items)
        cursor = page.next_cursor
        if cursor is None:
            return found


@dataclass(frozen=True, slots=True)
class WorkersView:
    workers: list[WorkerInfo]
    running: dict[str, JobStatus]


async def workers_view(jobs: Jobs) -> WorkersView:
    workers = await jobs.workers()
    ids = sorted({job for w in workers if w.state == "alive" for job in w.running_jobs})
    statuses = await jobs.client.statuses(ids) if ids else []
    return WorkersView(workers, {s.job_id: s for s in statuses if s is not None})


async def schedules_view(jobs: Jobs) -> list[ScheduleView]:
    """Every schedule the tasks declare, as `GET /schedules` lists them."""
    return await schedule_views(jobs.client, datetime.now(UTC))


@dataclass(frozen=True, slots=True)
class FailureKind:
    """A task's dead letters of one error type: how many, and the newest."""

    type: str
    count: int
    latest: DeadLetter


def failure_kinds(letters: list[DeadLetter]) -> list[FailureKind]:
    """Dead letters (newest first) grouped by error type, the most frequent first."""
    tally = Counter(letter.error.type for letter in letters)
    latest: dict[str, DeadLetter] = {}
    for letter in letters:
        latest.setdefault(letter.error.type, letter)
    return [FailureKind(kind, n, latest[kind]) for kind, n in tally.most_common()]


@dataclass(frozen=True, slots=True)
class TaskView:
    """A task's definition (None when it is not registered here but has statistics), its statistics
    over `window` and its recent failures by error type."""

    name: str
    task: Task[Any, Any] | None
    queue: str | None
    timeout_s: float | None
    soft_timeout_s: float | None
    schedules: list[ScheduleView]
    window: Window
    stats: Stats
    failures: list[FailureKind]
    failures_scanned: int

    @property
    def live(self) -> bool:
        return self.window is LIVE_WINDOW

    @property
    def summary(self) -> TaskStats | None:
        return next((row for row in self.stats.tasks if row.task == self.name), None)

    @property
    def retry_on(self) -> list[str]:
        return [qualified_name(kind) for kind in self.task.retry.retry_on] if self.task else []

    @property
    def fail_on(self) -> list[str]:
        return [qualified_name(kind) for kind in self.task.retry.fail_on] if self.task else []


async def task_view(jobs: Jobs, name: str, window: Window = PAGE_WINDOW) -> TaskView:
    """UnknownTaskError (a 404 page) for a task neither registered nor with statistics."""
    stats = await jobs.stats(window, task=name)
    registry = jobs.client.registry
    task = registry.get(name) if name in registry else None
    settings = jobs.client.settings
    schedules = [s for s in await schedules_view(jobs) if s.task == name] if task else []
    letters = await jobs.dead_letter_page(limit=FAILURES_SCANNED, cursor=None, task=name)
    return TaskView(
        name=name,
        task=task,
        queue=task.queue_for(settings) if task else None,
        timeout_s=task.timeout_for(settings) if task else None,
        soft_timeout_s=task.soft_timeout_for(settings) if task else None,
        schedules=schedules,
        window=window,
        stats=stats,
        failures=failure_kinds(letters.items),
        failures_scanned=len(letters.items),
    )


@dataclass(frozen=True, slots=True)
class WorkflowView:
    """A workflow's status, and which of its step jobs exist (a step's job id is assigned when the
    workflow is created, but its job only once its stage is enqueued: only those get a link)."""

    status: WorkflowStatus
    enqueued: frozenset[str]

    @property
    def live(self) -> bool:
        return not self.status.is_terminal

    @property
    def can_cancel(self) -> bool:
        return self.live

    @property
    def succeeded(self) -> int:
        return sum(step.status is JobState.SUCCEEDED for step in self.status.steps)


async def workflow_view(jobs: Jobs, workflow_id: str) -> WorkflowView:
    status = await jobs.workflow(workflow_id)
    found = await jobs.client.statuses([step.job_id for step in status.steps])
    return WorkflowView(status, frozenset(job.job_id for job in found if job is not None))
