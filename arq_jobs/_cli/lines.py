"""`arq-jobs enqueue TASK --json-lines FILE`: one job per line of a JSON-lines file (`-`: stdin), sent in
batches of up to MAX_BATCH_JOBS (JobClient.enqueue_many, one Redis call each).

The whole file is read and every line checked first (JSON, and valid for the task): a bad line is named
by its number and nothing is enqueued. Then each batch is stored whole or not at all. Should one be
refused after others went in (a full queue, Redis gone, an input JSON cannot store), the jobs already
made are printed and the error says up to which line; with `--idempotency-key K` batch n is sent with
the key `K:n`, so that running the same command again makes only the jobs that were not made.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import typer
from redis.exceptions import RedisError

from arq_jobs._cli.errors import CliError, ExitCode, describe, exit_code_for
from arq_jobs._cli.inputs import parse_payload, parse_run_at
from arq_jobs._cli.output import Accepted, Output, print_json
from arq_jobs._cli.session import fail, redis_failure, run
from arq_jobs._client import MAX_BATCH_JOBS, Enqueued, JobClient
from arq_jobs._errors import JobsError, TaskInputError
from arq_jobs._idempotency import KEY_MAX_LENGTH
from arq_jobs._tasks.registry import Task

Line = tuple[int, Any]  # a line's number and its JSON value


def enqueue_lines(
    ctx: typer.Context,
    task: str,
    source: str,
    *,
    delay: float | None,
    run_at: str | None,
    idempotency_key: str | None,
    queue: str | None,
    wait: bool,
    output: Output,
) -> None:
    """The `enqueue` command with `--json-lines`: prints the jobs' ids, one a line (JSON with `-o json`)."""
    given = ctx.get_parameter_source("payload")
    if given is not None and given.name == "COMMANDLINE":
        raise fail("give the input by --json or by --json-lines, not both", ExitCode.USAGE)
    if wait:
        raise fail("--wait follows one job: it does not go with --json-lines", ExitCode.USAGE)

    async def work(client: JobClient) -> list[Enqueued]:
        chosen = client.registry.get(task)
        client.queue_for(chosen, queue)  # an unknown task or queue is refused before the file is read
        when = parse_run_at(run_at)
        lines = read_lines(source)
        batches = (len(lines) + MAX_BATCH_JOBS - 1) // MAX_BATCH_JOBS
        if idempotency_key is not None and len(batch_key(idempotency_key, batches)) > KEY_MAX_LENGTH:
            reason = f"--idempotency-key: at most {KEY_MAX_LENGTH} characters with the batch's ':{batches}'"
            raise CliError(reason, ExitCode.INVALID_INPUT)
        return await send_lines(
            client,
            chosen,
            lines,
            delay=delay,
            run_at=when,
            idempotency_key=idempotency_key,
            queue=queue,
            output=output,
        )

    show_jobs(run(ctx, work), output)


def read_lines(source: str) -> list[Line]:
    """The JSON value of every line of `source` (a file's path, or `-` for stdin) but blank ones, with
    its number; CliError naming the first line that is not JSON, or when there is none."""
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else str(error)
        raise CliError(f"--json-lines {source}: {reason or error}", ExitCode.INVALID_INPUT) from None
    try:
        lines = [
            (number, parse_payload(line, f"line {number}"))
            for number, line in enumerate(text.splitlines(), 1)
            if line.strip()
        ]
    except CliError as error:
        raise CliError(f"--json-lines {source}: {error.message}; nothing was enqueued", error.code) from None
    if not lines:
        raise CliError(f"--json-lines {source} has no lines: nothing was enqueued", ExitCode.INVALID_INPUT)
    return lines


def batch_key(idempotency_key: str, batch: int) -> str:
    """The Idempotency-Key of the `batch`-th batch (from 1) of a file sent with `idempotency_key`."""
    return f"{idempotency_key}:{batch}"


async def send_lines(
    client: JobClient,
    task: Task[Any, Any],
    lines: Sequence[Line],
    *,
    delay: float | None,
    run_at: datetime | None,
    idempotency_key: str | None,
    queue: str | None,
    output: Output,
) -> list[Enqueued]:
    """Check every line against `task`, then enqueue them in batches of up to MAX_BATCH_JOBS."""
    numbers = [number for number, _ in lines]
    try:
        items = task.parse_inputs([value for _, value in lines])
    except TaskInputError as error:
        raise line_errors(error, numbers) from None
    done: list[Enqueued] = []
    for start in range(0, len(items), MAX_BATCH_JOBS):
        key = None if idempotency_key is None else batch_key(idempotency_key, start // MAX_BATCH_JOBS + 1)
        try:
            done += await client.enqueue_many(
                task,
                items[start : start + MAX_BATCH_JOBS],
                delay=delay,
                run_at=run_at,
                idempotency_key=key,
                queue=queue,
            )
        except TaskInputError as error:  # valid, but not storable as it is
            raise partly_done(line_errors(error, numbers[start:]), done, numbers, output) from None
        except JobsError as error:
            failure = CliError(describe(error, client.registry), exit_code_for(error))
            raise partly_done(failure, done, numbers, output) from None
        except RedisError as error:
            raise partly_done(redis_failure(client.settings, error), done, numbers, output) from None
    return done


def line_errors(error: TaskInputError, numbers: Sequence[int]) -> CliError:
    """`error` (each mistake's `loc` starting with its input's index) naming lines by their numbers."""
    mistakes = []
    for mistake in error.errors:
        index, *field = mistake["loc"] or [None]
        line = f"line {numbers[index]}" if isinstance(index, int) else "(lines)"
        mistakes.append(f"{line}: {'.'.join(str(part) for part in field) or '(input)'}: {mistake['msg']}")
    message = f"invalid input for task {error.task!r}: {'; '.join(mistakes)}"
    return CliError(message, ExitCode.INVALID_INPUT)


def partly_done(failure: CliError, done: list[Enqueued], numbers: Sequence[int], output: Output) -> CliError:
    """`failure`, and when earlier batches were stored, their jobs printed and the error saying so."""
    if not done:
        return CliError(f"{failure.message}; nothing was enqueued", failure.code)
    show_jobs(done, output)
    last = numbers[len(done) - 1]
    note = f"the jobs of the lines up to line {last} were enqueued ({len(done)}, printed), none after"
    return CliError(f"{failure.message}; {note}", failure.code)


def show_jobs(jobs: Sequence[Enqueued], output: Output) -> None:
    if output is Output.JSON:
        print_json([accepted(job) for job in jobs])
    else:
        sys.stdout.write("".join(f"{job.job_id}\n" for job in jobs))
        sys.stdout.flush()


def accepted(job: Enqueued) -> Accepted:
    """What `-o json` shows of a job; a replayed one's state is not read again (null)."""
    return Accepted(
        job_id=job.job_id,
        task=job.task,
        status=None if job.replayed else job.status,
        scheduled_for=job.scheduled_for,
        idempotent_replay=job.replayed,
    )
