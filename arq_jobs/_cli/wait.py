"""`--wait`: follow a job's event stream (the same events as GET /jobs/{id}/events) until it ends,
showing its state and progress — a rich progress bar on a terminal, one line per change elsewhere
(logs, CI, pipes); or a workflow, whose state is derived when read, by reading it until it ends."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from arq_jobs._cli.output import progress_text
from arq_jobs._client import JobClient
from arq_jobs._jobs.states import JobState
from arq_jobs._jobs.status import JobStatus
from arq_jobs._workflows.engine import Workflows
from arq_jobs._workflows.status import WorkflowStatus

BLOCK_MS = 1000  # below the Redis socket timeout; after each idle second the status is read
WORKFLOW_POLL_S = 0.2  # a workflow has no event stream of its own


async def follow(client: JobClient, job_id: str, seen: Callable[[JobStatus], None]) -> JobStatus:
    """Call `seen` with the job's status at each of its events (from its first) until it ends; return
    its final status, as of its last event. While no event comes the status is read once a second:
    time-driven changes (a delayed job becoming due) have no event, and an expired stream must not
    hang the wait."""
    after = "0"
    while True:
        events = await client.events.read(job_id, after, block_ms=BLOCK_MS)
        for event in events:
            after = event.id
            seen(event.status)
            if event.is_last:
                # not a fresh read: a failed job's event precedes ARQ's result by a moment, during
                # which its status still reads running
                return event.status
        if not events:
            current = await client.status(job_id)
            seen(current)
            if current.is_terminal:
                return current


async def follow_workflow(
    workflows: Workflows, workflow_id: str, seen: Callable[[WorkflowStatus], None]
) -> WorkflowStatus:
    """Call `seen` with the workflow's status every WORKFLOW_POLL_S until it has ended; return it."""
    while True:
        current = await workflows.status(workflow_id)
        seen(current)
        if current.is_terminal:
            return current
        await asyncio.sleep(WORKFLOW_POLL_S)


def workflow_line(status: WorkflowStatus) -> str:
    """`running 1/3 steps succeeded; running steps[1]`: its state, how far, and what runs now."""
    done = sum(step.status is JobState.SUCCEEDED for step in status.steps)
    line = f"{status.status.value} {done}/{len(status.steps)} steps succeeded"
    active = [step.path for step in status.steps if step.status in (JobState.RUNNING, JobState.RETRYING)]
    return f"{line}; running {', '.join(active)}" if active else line


class WorkflowLines:
    """Prints a workflow's line (workflow_line) on `console` each time it changes."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.last = ""

    def __call__(self, status: WorkflowStatus) -> None:
        line = workflow_line(status)
        if line != self.last:
            self.last = line
            self.console.print(line, markup=False, highlight=False)


def status_line(status: JobStatus) -> str:
    """One line for a status: its state, then its progress if any."""
    progress = progress_text(status.progress)
    return f"{status.status.value} {progress}" if progress else status.status.value


class ProgressView:
    """Shows each new state or progress of a job on `console` (stderr): a live bar on a terminal,
    otherwise one line per change."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.last = ""
        self.bar: Progress | None = None
        self.task: TaskID | None = None

    def __enter__(self) -> ProgressView:
        if self.console.is_terminal:
            self.bar = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=self.console,
            )
            self.task = self.bar.add_task("waiting", total=None)
            self.bar.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self.bar is not None:
            self.bar.stop()

    def __call__(self, status: JobStatus) -> None:
        line = status_line(status)
        if line == self.last:
            return
        self.last = line
        if self.bar is None or self.task is None:
            self.console.print(line, markup=False, highlight=False)
            return
        progress = status.progress
        description = status.status.value
        if progress is not None and progress.message:
            description = f"{description}: {progress.message}"
        self.bar.update(
            self.task,
            description=description,
            total=None if progress is None else progress.total,
            completed=0 if progress is None else progress.step,
        )
