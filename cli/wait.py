"""`enqueue --wait`: follow a job's event stream (the same events as GET /jobs/{id}/events) until it
ends, showing its state and progress; a rich progress bar on a terminal, one line per change
elsewhere (logs, CI, pipes)."""

from __future__ import annotations

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

from cli.output import progress_text
from jobcore.client import JobClient
from jobcore.status import JobStatus

BLOCK_MS = 1000  # below the Redis socket timeout; after each idle second the status is read


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
