"""`arq-jobs dead list|show|retry|delete`: jobs that failed for good (the dead-letter store)."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer
from pydantic import BaseModel, Field

from arq_jobs._cli.errors import ExitCode, describe, exit_code_for
from arq_jobs._cli.inputs import CursorOption
from arq_jobs._cli.output import (
    Accepted,
    JsonFlag,
    Output,
    OutputOption,
    accepted_table,
    choose,
    dead_letter_table,
    dead_letters_table,
    paged,
    show,
)
from arq_jobs._cli.session import fail, run
from arq_jobs._client import Enqueued, JobClient
from arq_jobs._clock import now_ms
from arq_jobs._deadletters import DeadLetter, DeadLetterPage
from arq_jobs._errors import JobsError

app = typer.Typer(
    help="Dead letters: jobs that failed for good; look at them, retry them as new jobs, delete them.",
    no_args_is_help=True,
)

PAGE = 500

T = TypeVar("T")

Task = Annotated[str | None, typer.Option("--task", help="Only this task's dead letters.")]
OptionalJobId = Annotated[
    str | None,
    typer.Argument(help="The dead-lettered job's id (or --all).", show_default=False, metavar="JOB_ID"),
]
AllFlag = Annotated[bool, typer.Option("--all", help="Every dead letter (of --task, if given).")]
YesFlag = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation with --all.")]


@app.command("list")
def list_letters(
    ctx: typer.Context,
    task: Task = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=PAGE, help="Page size.")] = 20,
    cursor: CursorOption = None,
    output: OutputOption = Output.TABLE,
    as_json: JsonFlag = False,
) -> None:
    """Dead letters, newest first."""

    async def work(client: JobClient) -> DeadLetterPage:
        return await client.dead_letters.page(limit=limit, cursor=cursor, task=task, now_ms=now_ms())

    page = run(ctx, work)
    show(
        page,
        choose(output, as_json),
        *paged(dead_letters_table(page), page.next_cursor, "dead letters"),
    )


@app.command("show")
def show_letter(
    ctx: typer.Context,
    job_id: Annotated[
        str, typer.Argument(help="The dead-lettered job's id.", show_default=False, metavar="JOB_ID")
    ],
    output: OutputOption = Output.TABLE,
    as_json: JsonFlag = False,
) -> None:
    """One dead letter: task, input, error with its traceback, attempts, times, last worker."""

    async def work(client: JobClient) -> DeadLetter:
        return await client.dead_letters.get(job_id)

    letter = run(ctx, work)
    traceback = f"traceback:\n{letter.error.traceback}" if letter.error.traceback else ""
    show(letter, choose(output, as_json), dead_letter_table(letter), traceback)


def target(ctx: typer.Context, job_id: str | None, every: bool, task: str | None) -> None:
    """A job id, or --all (optionally with --task): exactly one of them."""
    if (job_id is None) == (not every):
        raise typer.BadParameter("give a dead letter's job id or --all (not both)", ctx, param_hint="JOB_ID")
    if task is not None and not every:
        raise typer.BadParameter("--task goes with --all", ctx, param_hint="--task")


async def every_id(client: JobClient, task: str | None) -> list[str]:
    """The ids of every dead letter (of `task`), newest first."""
    ids: list[str] = []
    cursor = None
    while True:
        page = await client.dead_letters.page(limit=PAGE, cursor=cursor, task=task, now_ms=now_ms())
        ids.extend(letter.job_id for letter in page.items)
        cursor = page.next_cursor
        if cursor is None:
            return ids


def ask(question: str) -> bool:
    """A yes/no question on stderr, the answer from stdin (stdout stays clean for --json); no
    answer (end of input) is no."""
    typer.echo(f"{question} [y/N]: ", err=True, nl=False)
    answer = sys.stdin.readline()
    if not answer.endswith("\n"):
        typer.echo(err=True)
    return answer.strip().lower() in {"y", "yes"}


def confirmed_ids(ctx: typer.Context, verb: str, task: str | None, yes: bool) -> list[str]:
    """Every dead letter's id once the operator agreed (or gave --yes); ends the command when there
    is none (exit 0) or the answer is no."""

    async def work(client: JobClient) -> list[str]:
        return await every_id(client, task)

    ids = run(ctx, work)
    which = "" if task is None else f" of task {task!r}"
    if not ids:
        typer.echo(f"no dead letters{which}", err=True)
        raise typer.Exit(int(ExitCode.OK))
    if not yes:
        count = "the 1 dead letter" if len(ids) == 1 else f"all {len(ids)} dead letters"
        agreed = ask(f"{verb} {count}{which}?")
        if not agreed:
            raise fail(f"nothing done: {verb.lower()} not confirmed", ExitCode.NOT_CONFIRMED)
    return ids


class Failure(BaseModel):
    """A dead letter that --all could not handle (retried or deleted meanwhile, its task is gone...)."""

    job_id: str
    error: str = Field(description="The core's error code, e.g. unknown_task.")
    message: str


async def for_each(
    client: JobClient, ids: list[str], action: Callable[[str], Awaitable[T]]
) -> tuple[list[T], list[Failure], list[ExitCode]]:
    """Run `action` on each id; a core error is recorded for that id and the rest go on."""
    done: list[T] = []
    failed: list[Failure] = []
    codes: list[ExitCode] = []
    for letter_id in ids:
        try:
            done.append(await action(letter_id))
        except JobsError as error:
            failed.append(
                Failure(job_id=letter_id, error=error.code, message=describe(error, client.registry))
            )
            codes.append(exit_code_for(error))
    return done, failed, codes


def report(failed: list[Failure], codes: list[ExitCode]) -> None:
    """One `error:` line per dead letter that could not be handled; exit with the first one's code."""
    for item in failed:
        typer.echo(f"error: dead letter {item.job_id}: {item.message}", err=True)
    if codes:
        raise typer.Exit(int(codes[0]))


def accepted(job: Enqueued) -> Accepted:
    return Accepted(
        job_id=job.job_id,
        task=job.task,
        status=job.status,
        scheduled_for=job.scheduled_for,
        retry_of=job.retry_of,
    )


@app.command()
def retry(
    ctx: typer.Context,
    job_id: OptionalJobId = None,
    every: AllFlag = False,
    task: Task = None,
    yes: YesFlag = False,
    output: OutputOption = Output.TABLE,
    as_json: JsonFlag = False,
) -> None:
    """Enqueue a dead letter's task and input again as a new job (retry_of links back) and remove
    the dead letter; --all does so for every one (JSON: {"retried": [...], "failed": [...]})."""
    target(ctx, job_id, every, task)
    mode = choose(output, as_json)
    if job_id is not None:
        single = job_id

        async def one(client: JobClient) -> Accepted:
            return accepted(await client.retry_dead_letter(single))

        job = run(ctx, one)
        show(job, mode, accepted_table([job]))
        return
    ids = confirmed_ids(ctx, "Retry", task, yes)

    async def each(client: JobClient) -> tuple[list[Accepted], list[Failure], list[ExitCode]]:
        async def action(letter_id: str) -> Accepted:
            return accepted(await client.retry_dead_letter(letter_id))

        return await for_each(client, ids, action)

    retried, failed, codes = run(ctx, each)
    summary = f"retried {len(retried)} of {len(ids)} dead letters"
    show({"retried": retried, "failed": failed}, mode, accepted_table(retried), summary)
    report(failed, codes)


@app.command()
def delete(
    ctx: typer.Context,
    job_id: OptionalJobId = None,
    every: AllFlag = False,
    task: Task = None,
    yes: YesFlag = False,
    output: OutputOption = Output.TABLE,
    as_json: JsonFlag = False,
) -> None:
    """Forget a dead letter (JSON: {"deleted": ["<id>"]}); --all forgets every one (JSON:
    {"deleted": [...], "failed": [...]})."""
    target(ctx, job_id, every, task)
    mode = choose(output, as_json)
    if job_id is not None:
        single = job_id

        async def one(client: JobClient) -> None:
            await client.dead_letters.delete(single)

        run(ctx, one)
        show({"deleted": [single]}, mode, f"deleted dead letter {single}")
        return
    ids = confirmed_ids(ctx, "Delete", task, yes)

    async def each(client: JobClient) -> tuple[list[str], list[Failure], list[ExitCode]]:
        async def action(letter_id: str) -> str:
            await client.dead_letters.delete(letter_id)
            return letter_id

        return await for_each(client, ids, action)

    deleted, failed, codes = run(ctx, each)
    summary = f"deleted {len(deleted)} of {len(ids)} dead letters"
    show({"deleted": deleted, "failed": failed}, mode, summary)
    report(failed, codes)
