"""What the CLI prints: rich tables for people, or JSON (`--json` / `--output json`) for scripts.

JSON is the models' `model_dump(mode="json")`, the same shapes as the HTTP API's answers. Tables go
to stdout; errors (one line) and progress go to stderr, so stdout stays parseable.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

import typer
from pydantic import BaseModel, Field
from pydantic_core import to_jsonable_python
from rich import box
from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

from arq_jobs._deadletters import DeadLetter, DeadLetterPage
from arq_jobs._jobs.listing import JobPage
from arq_jobs._jobs.states import JobState
from arq_jobs._jobs.status import JobStatus, Throttled
from arq_jobs._queues import QueueStats
from arq_jobs._schedules.views import ScheduleView
from arq_jobs._stats.reader import Stats
from arq_jobs._tasks.progress import Progress
from arq_jobs._worker_registry import WorkerInfo
from arq_jobs._workflows.status import WorkflowStatus

NON_TERMINAL_WIDTH = 200
NULL = "—"  # a statistic with nothing to read it from


class Output(StrEnum):
    TABLE = "table"
    JSON = "json"


OutputOption = Annotated[
    Output, typer.Option("--output", "-o", help="table (for people) or json (for scripts).")
]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON (same as --output json).")]


def choose(output: Output, as_json: bool = False) -> Output:
    return Output.JSON if as_json else output


class Accepted(BaseModel):
    """A job the CLI enqueued (or found under an idempotency key): the API's 202 answer without URLs."""

    job_id: str
    task: str
    status: JobState | None = Field(description="At enqueue; for a replay its current state.")
    scheduled_for: datetime | None = None
    retry_of: str | None = None
    idempotent_replay: bool = False


def console(*, stderr: bool = False) -> Console:
    """A console on stdout (or stderr): live colours on a terminal; elsewhere plain and wide enough
    that tables are not wrapped at 80 columns."""
    stream = sys.stderr if stderr else sys.stdout
    width = None
    if not stream.isatty():
        width = int(os.environ.get("COLUMNS", "0") or 0) or NON_TERMINAL_WIDTH
    return Console(stderr=stderr, width=width, highlight=False)


def print_json(data: Any) -> None:
    """`data` (models, lists of them, dicts) as indented JSON on stdout, never wrapped."""
    sys.stdout.write(json.dumps(to_jsonable_python(data), indent=2, ensure_ascii=False) + "\n")


def show(data: Any, output: Output, *tables: RenderableType | str) -> None:
    """Print `data` as JSON, or its tables (and lines) for people."""
    if output is Output.JSON:
        print_json(data)
        return
    out = console()
    for table in tables:
        if isinstance(table, str):
            if table:
                out.print(Text(table))
        else:
            out.print(table)


def when(value: datetime | None) -> str:
    return "" if value is None else value.isoformat(timespec="seconds")


def progress_text(progress: Progress | None) -> str:
    if progress is None:
        return ""
    text = f"{progress.step}/{progress.total} ({progress.percent:g}%)"
    return f"{text} {progress.message}" if progress.message else text


def compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def table(*columns: str, title: str | None = None) -> Table:
    found = Table(*columns, box=box.SIMPLE, title=title, title_justify="left", show_edge=False)
    return found


def add_row(to: Table, cells: Iterable[Any]) -> None:
    to.add_row(*(Text("" if cell is None else str(cell)) for cell in cells))


def fields_table(rows: Sequence[tuple[str, Any]]) -> Table:
    """A two-column table of `field  value`, leaving out empty values."""
    found = Table(box=box.SIMPLE, show_header=False, show_edge=False)
    found.add_column("field", style="bold")
    found.add_column("value", overflow="fold")
    for name, value in rows:
        if value is None or value == "":
            continue
        add_row(found, (name, value))
    return found


def attempts(status: JobStatus) -> str:
    return f"{status.attempt}/{status.max_attempts}" if status.max_attempts else str(status.attempt)


def error_text(error: Any) -> str:
    return "" if error is None else f"{error.type}: {error.message}"


def throttled_text(throttled: Throttled | None) -> str | None:
    """`rate limit, next try <time>`: which of its task's limits a waiting job waits for."""
    if throttled is None:
        return None
    text = f"waiting for its task's {throttled.reason} limit"
    return f"{text}, next try {when(throttled.next_try_at)}" if throttled.next_try_at else text


def status_table(status: JobStatus) -> Table:
    return fields_table(
        [
            ("job_id", status.job_id),
            ("task", status.task),
            ("queue", status.queue),
            ("status", status.status.value),
            ("attempt", attempts(status)),
            ("enqueued_at", when(status.enqueued_at)),
            ("scheduled_for", when(status.scheduled_for)),
            ("started_at", when(status.started_at)),
            ("finished_at", when(status.finished_at)),
            ("next_attempt_at", when(status.next_attempt_at)),
            ("progress", progress_text(status.progress)),
            ("result", None if status.result is None else json.dumps(status.result, indent=2)),
            ("error", error_text(status.error)),
            ("dead_lettered", "yes" if status.dead_lettered else None),
            ("retry_of", status.retry_of),
            ("cancel_requested", "yes" if status.cancel_requested else None),
            ("throttled", throttled_text(status.throttled)),
            ("workflow_id", status.workflow_id),
            ("schedule", status.schedule),
        ]
    )


def accepted_table(jobs: Sequence[Accepted]) -> Table:
    found = table("JOB ID", "TASK", "STATUS", "SCHEDULED FOR", "RETRY OF")
    for job in jobs:
        status = "" if job.status is None else job.status.value
        if job.idempotent_replay:
            status = f"{status} (idempotent replay)".strip()
        add_row(found, (job.job_id, job.task, status, when(job.scheduled_for), job.retry_of))
    return found


def jobs_table(page: JobPage) -> Table:
    found = table("JOB ID", "TASK", "QUEUE", "STATUS", "ATTEMPT", "RUN AT", "PROGRESS", "ERROR")
    for item in page.items:
        add_row(
            found,
            (
                item.job_id,
                item.task,
                item.queue,
                item.status.value,
                attempts(item),
                when(item.scheduled_for or item.enqueued_at),
                progress_text(item.progress),
                error_text(item.error),
            ),
        )
    return found


def paged(rows: Table, cursor: str | None, what: str) -> list[RenderableType | str]:
    """A page of a listing: its table and how to get the next page, or `no <what>`."""
    if not rows.row_count:
        return [f"no {what}"]
    return [rows] if cursor is None else [rows, f"next page: --cursor {cursor}"]


def queues_table(queues: Sequence[QueueStats]) -> Table:
    found = table(
        "QUEUE",
        "PENDING",
        "SCHEDULED",
        "RUNNING",
        "RETRYING",
        "SUCCEEDED",
        "FAILED",
        "CANCELLED",
        "DEAD",
        "OLDEST PENDING S",
        "WORKERS",
    )
    for q in queues:
        add_row(
            found,
            (
                q.name,
                q.pending,
                q.scheduled,
                q.running,
                q.retrying,
                q.succeeded,
                q.failed,
                q.cancelled,
                q.dead_lettered,
                "" if q.oldest_pending_age_s is None else f"{q.oldest_pending_age_s:g}",
                q.workers,
            ),
        )
    return found


def workers_table(workers: Sequence[WorkerInfo]) -> Table:
    found = table(
        "WORKER ID",
        "STATE",
        "HOST",
        "PID",
        "QUEUES",
        "RUNNING",
        "SUCCEEDED",
        "FAILED",
        "RETRIED",
        "CANCELLED",
        "LAST SEEN S",
        "REGISTRY",
        "VERSION",
    )
    for w in workers:
        add_row(
            found,
            (
                w.worker_id,
                w.state,
                w.host,
                w.pid,
                ",".join(w.queues),
                f"{w.running}/{w.concurrency}",
                w.totals.succeeded,
                w.totals.failed,
                w.totals.retried,
                w.totals.cancelled,
                f"{w.last_seen_age_s:g}",
                w.registry_version,
                w.version,
            ),
        )
    return found


def dead_letters_table(page: DeadLetterPage) -> Table:
    found = table("JOB ID", "TASK", "QUEUE", "REASON", "ATTEMPTS", "FAILED AT", "ERROR")
    for letter in page.items:
        add_row(
            found,
            (
                letter.job_id,
                letter.task,
                letter.queue,
                letter.reason,
                letter.attempts,
                when(letter.failed_at),
                error_text(letter.error),
            ),
        )
    return found


def dead_letter_table(letter: DeadLetter) -> Table:
    return fields_table(
        [
            ("job_id", letter.job_id),
            ("task", letter.task),
            ("queue", letter.queue),
            ("reason", letter.reason),
            (
                "attempts",
                f"{letter.attempts}/{letter.max_attempts}" if letter.max_attempts else letter.attempts,
            ),
            ("enqueued_at", when(letter.enqueued_at)),
            ("started_at", when(letter.started_at)),
            ("failed_at", when(letter.failed_at)),
            ("worker", letter.worker),
            ("retry_of", letter.retry_of),
            ("input", json.dumps(letter.input, indent=2)),
            ("error", error_text(letter.error)),
        ]
    )


def millis(ms: int | None) -> str:
    """A duration in ms as people read it: `250 ms`, `2.5 s`, `5 min`, `1 h`."""
    if ms is None:
        return NULL
    for size, unit in ((3_600_000, "h"), (60_000, "min"), (1000, "s")):
        if ms >= size:
            return f"{ms / size:g} {unit}"
    return f"{ms} ms"


def stats_scope(stats: Stats) -> str:
    """`the last 24h`, with the task and queue the statistics are limited to."""
    limits = []
    if stats.task is not None:
        limits.append(f"task {stats.task}")
    if stats.queue is not None:
        limits.append(f"queue {stats.queue}")
    return f"the last {stats.window.value}" + (f" ({', '.join(limits)})" if limits else "")


def stats_tables(stats: Stats) -> list[RenderableType | str]:
    """The window (and task, queue) in one line, then a row per task, busiest first; or a line
    saying no job ended in the window."""
    if not stats.tasks:
        return [f"no jobs ended in {stats_scope(stats)}"]
    found = table("TASK", "JOBS", "FAILED %", "RUN P50", "RUN P95", "WAIT P95", "RETRIED", "CANCELLED")
    for row in stats.tasks:
        rate = row.failure_rate
        add_row(
            found,
            (
                row.task,
                row.count,
                NULL if rate is None else f"{round(rate * 100, 1):g}",
                millis(row.run_p50_ms),
                millis(row.run_p95_ms),
                millis(row.wait_p95_ms),
                row.retried,
                row.cancelled,
            ),
        )
    return [f"jobs that ended in {stats_scope(stats)}, by task", found]


def schedules_table(schedules: Sequence[ScheduleView]) -> Table:
    found = table(
        "NAME",
        "TASK",
        "CRON",
        "TIMEZONE",
        "QUEUE",
        "ENABLED",
        "NEXT RUN",
        "LAST RUN",
        "LAST JOB",
        "LAST STATUS",
    )
    for s in schedules:
        last = s.last_run
        add_row(
            found,
            (
                s.name,
                s.task,
                s.cron,
                s.timezone,
                s.queue,
                "yes" if s.enabled else "no",
                when(s.next_run_at),
                when(last.scheduled_for) if last else "",
                last.job_id if last else "",
                "" if last is None else last.status.value if last.status else "expired",
            ),
        )
    return found


def workflow_tables(workflow: WorkflowStatus) -> list[RenderableType]:
    """A workflow's fields, then one row per step."""
    error = workflow.error
    fields = fields_table(
        [
            ("workflow_id", workflow.workflow_id),
            ("type", workflow.type.value),
            ("status", workflow.status.value),
            ("created_at", when(workflow.created_at)),
            ("cancelled_at", when(workflow.cancelled_at)),
            ("result", None if workflow.result is None else json.dumps(workflow.result, indent=2)),
            ("error", error_text(error)),
            ("error_step", None if error is None else error.step),
        ]
    )
    steps = table("STEP", "TASK", "JOB ID", "STATUS", "RESULT / ERROR")
    for step in workflow.steps:
        outcome = error_text(step.error) or ("" if step.result is None else compact(step.result))
        add_row(steps, (step.path, step.task, step.job_id, step.status.value, outcome))
    return [fields, steps]
