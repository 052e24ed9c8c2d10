"""`arq-jobs`: the operator's console over the same core as the API (arq_jobs.JobClient on Redis),
not over HTTP. Exit codes: see arq_jobs._cli.errors."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from arq_jobs._cli import dead, keys, worker, workflows
from arq_jobs._cli.errors import ExitCode, exit_codes_help
from arq_jobs._cli.inputs import CursorOption, check_idempotency_key, parse_payload, parse_run_at
from arq_jobs._cli.lines import enqueue_lines
from arq_jobs._cli.output import (
    Accepted,
    JsonFlag,
    Output,
    OutputOption,
    accepted_table,
    choose,
    console,
    jobs_table,
    paged,
    queues_table,
    schedules_table,
    show,
    stats_tables,
    status_table,
    workers_table,
)
from arq_jobs._cli.session import fail, run
from arq_jobs._cli.wait import ProgressView, follow
from arq_jobs._client import Enqueued, JobClient
from arq_jobs._errors import JobNotFoundError
from arq_jobs._jobs.listing import JobPage
from arq_jobs._jobs.states import JobState
from arq_jobs._jobs.status import JobStatus
from arq_jobs._queues import QueueStats
from arq_jobs._schedules.views import ScheduleView, schedule_views
from arq_jobs._secrets import new_key
from arq_jobs._stats.reader import Stats
from arq_jobs._stats.window import Window
from arq_jobs._worker_registry import WorkerInfo

app = typer.Typer(
    name="arq-jobs",
    help="Enqueue jobs and look after them: status, cancel, listings, queues, workers, statistics, "
    "dead letters, schedules, workflows.",
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog=f"Settings: the JOBS_* variables (and .env) of the API and workers. {exit_codes_help()}",
)
app.add_typer(dead.app, name="dead")
app.add_typer(workflows.app, name="workflow")
app.add_typer(keys.app, name="keys")
app.command("worker")(worker.command)

JobId = Annotated[str, typer.Argument(help="The job's id.", show_default=False, metavar="JOB_ID")]


async def accepted(client: JobClient, job: Enqueued) -> Accepted:
    """What to show for an enqueued job; an idempotent replay shows the earlier job as it is now."""
    if not job.replayed:
        return Accepted(
            job_id=job.job_id,
            task=job.task,
            status=job.status,
            scheduled_for=job.scheduled_for,
            retry_of=job.retry_of,
        )
    try:
        current: JobStatus | None = await client.status(job.job_id)
    except JobNotFoundError:
        current = None
    return Accepted(
        job_id=job.job_id,
        task=job.task,
        status=current.status if current else None,
        scheduled_for=current.scheduled_for if current else None,
        retry_of=current.retry_of if current else None,
        idempotent_replay=True,
    )


@app.command()
def enqueue(
    ctx: typer.Context,
    task: Annotated[
        str, typer.Argument(help="The task's name (see GET /tasks).", show_default=False, metavar="TASK")
    ],
    payload: Annotated[
        str, typer.Option("--json", "-j", help="The task's input as a JSON object.", metavar="JSON")
    ] = "{}",
    json_lines: Annotated[
        str | None,
        typer.Option(
            "--json-lines",
            help="One job per line of this JSON-lines file ('-': stdin), every line checked first, sent in "
            "batches of up to 1,000; prints the job ids.",
            metavar="FILE",
        ),
    ] = None,
    delay: Annotated[
        float | None, typer.Option("--delay", help="Run after this many seconds.", metavar="S")
    ] = None,
    run_at: Annotated[
        str | None,
        typer.Option("--run-at", help="Run at this ISO-8601 time with a timezone (not with --delay)."),
    ] = None,
    idempotency_key: Annotated[
        str | None,
        typer.Option(
            "--idempotency-key",
            help="Makes retrying safe: the same key and request return the first job.",
            callback=check_idempotency_key,
        ),
    ] = None,
    queue: Annotated[
        str | None,
        typer.Option("--queue", help="Run on this queue (one of JOBS_QUEUES) instead of the task's own."),
    ] = None,
    wait: Annotated[
        bool,
        typer.Option(
            "--wait", help="Follow the job (progress on stderr) until it ends; exit 1 unless it succeeds."
        ),
    ] = False,
    output: OutputOption = Output.TABLE,
) -> None:
    """Enqueue a job of TASK with the input given by --json (or one per line of --json-lines)."""
    if json_lines is not None:
        return enqueue_lines(
            ctx, task, json_lines, delay=delay, run_at=run_at, idempotency_key=idempotency_key, queue=queue,
            wait=wait, output=output,
        )  # fmt: skip

    async def work(client: JobClient) -> Accepted | JobStatus:
        data = parse_payload(payload)
        when = parse_run_at(run_at)
        job = await accepted(
            client,
            await client.enqueue_payload(
                task, data, delay=delay, run_at=when, idempotency_key=idempotency_key, queue=queue
            ),
        )
        if not wait:
            return job
        err = console(stderr=True)
        err.print(
            f"job {job.job_id} {job.status or 'enqueued'}; waiting for it to end "
            "(Ctrl-C stops waiting, not the job)",
            markup=False,
            highlight=False,
        )
        with ProgressView(err) as view:
            return await follow(client, job.job_id, view)

    result = run(ctx, work)
    if isinstance(result, Accepted):
        show(result, output, accepted_table([result]))
        return
    show(result, output, status_table(result))
    if result.status is JobState.FAILED:
        error = f": {result.error.type}: {result.error.message}" if result.error else ""
        raise fail(f"job {result.job_id} failed{error}", ExitCode.JOB_FAILED)
    if result.status is not JobState.SUCCEEDED:
        raise fail(f"job {result.job_id} was {result.status.value}", ExitCode.JOB_FAILED)


@app.command()
def status(
    ctx: typer.Context, job_id: JobId, output: OutputOption = Output.TABLE, as_json: JsonFlag = False
) -> None:
    """A job's state, attempts, times, progress, and its result or error."""

    async def work(client: JobClient) -> JobStatus:
        return await client.status(job_id)

    found = run(ctx, work)
    show(found, choose(output, as_json), status_table(found))


@app.command()
def cancel(
    ctx: typer.Context, job_id: JobId, output: OutputOption = Output.TABLE, as_json: JsonFlag = False
) -> None:
    """Cancel a job: a waiting one never runs; a running one is stopped by its worker within ~1 s."""

    async def work(client: JobClient) -> JobStatus:
        return await client.cancel(job_id)

    found = run(ctx, work)
    if found.is_terminal:
        summary = f"job {job_id} {found.status.value}"
    else:
        summary = f"job {job_id} is {found.status.value}: cancel requested, its worker stops it within ~1 s"
    show(found, choose(output, as_json), summary, status_table(found))


@app.command()
def jobs(
    ctx: typer.Context,
    state: Annotated[JobState | None, typer.Option("--state", help="Only jobs in this state.")] = None,
    task: Annotated[str | None, typer.Option("--task", help="Only this task's jobs.")] = None,
    queue: Annotated[str | None, typer.Option("--queue", help="Only this queue's jobs.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=500, help="Page size.")] = 20,
    cursor: CursorOption = None,
    output: OutputOption = Output.TABLE,
    as_json: JsonFlag = False,
) -> None:
    """Jobs newest first (by run time), filtered by state, task and queue."""

    async def work(client: JobClient) -> JobPage:
        return await client.jobs(state=state, task=task, queue=queue, limit=limit, cursor=cursor)

    page = run(ctx, work)
    show(page, choose(output, as_json), *paged(jobs_table(page), page.next_cursor, "jobs"))


@app.command()
def queues(ctx: typer.Context, output: OutputOption = Output.TABLE, as_json: JsonFlag = False) -> None:
    """Every queue: jobs by state, age of the oldest pending job, live workers."""

    async def work(client: JobClient) -> list[QueueStats]:
        return await client.queues()

    found = run(ctx, work)
    show(found, choose(output, as_json), queues_table(found))


@app.command()
def workers(ctx: typer.Context, output: OutputOption = Output.TABLE, as_json: JsonFlag = False) -> None:
    """Live workers, then recently stale (dead) or stopped ones."""

    async def work(client: JobClient) -> list[WorkerInfo]:
        return await client.workers()

    found = run(ctx, work)
    show(found, choose(output, as_json), workers_table(found) if found else "no workers")


@app.command()
def stats(
    ctx: typer.Context,
    window: Annotated[Window, typer.Option("--window", "-w", help="How far back to look.")] = Window.HOURS_24,
    task: Annotated[str | None, typer.Option("--task", help="Only this task's jobs.")] = None,
    queue: Annotated[str | None, typer.Option("--queue", help="Only this queue's jobs.")] = None,
    output: OutputOption = Output.TABLE,
    as_json: JsonFlag = False,
) -> None:
    """How jobs went over a window, per task: jobs ended, failure rate, run and wait times (bucket
    bounds), retries, cancellations. --json: all of GET /stats's body, with the series."""

    async def work(client: JobClient) -> Stats:
        return await client.stats(window, task=task, queue=queue)

    found = run(ctx, work)
    show(found, choose(output, as_json), *stats_tables(found))


@app.command()
def schedules(ctx: typer.Context, output: OutputOption = Output.TABLE, as_json: JsonFlag = False) -> None:
    """The tasks' periodic schedules: cron, queue, enabled, next run, the last run's job and its state."""

    async def work(client: JobClient) -> list[ScheduleView]:
        return await schedule_views(client, datetime.now(UTC))

    found = run(ctx, work)
    show(found, choose(output, as_json), schedules_table(found) if found else "no schedules")


@app.command("secret-key")
def secret_key() -> None:
    """Print a new key for JOBS_SECRETS_KEY (needs no Redis).

    To rotate: put the new key first and keep the old ones after it (`new,old`) until the jobs and
    dead letters sealed with them are gone."""
    typer.echo(new_key())


def main() -> None:
    """The `arq-jobs` console script."""
    app(prog_name="arq-jobs")
