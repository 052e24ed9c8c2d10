"""The `arq-jobs` CLI on fakeredis: each command through typer's CliRunner (in a thread, with its own
event loop, on the same fake server as the test's JobClient), its output, errors and exit codes."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from arq.connections import ArqRedis
from rich.console import Console
from typer.testing import CliRunner

from arq_jobs import _config as config
from arq_jobs._cli.errors import ExitCode
from arq_jobs._cli.main import app
from arq_jobs._cli.session import client_session, display_url
from arq_jobs._cli.wait import ProgressView, WorkflowLines, follow, status_line, workflow_line
from arq_jobs._client import JobClient
from arq_jobs._clock import now_ms
from arq_jobs._config import Settings
from arq_jobs._deadletters import DeadLetterError, FailureReason, build_dead_letter
from arq_jobs._jobs.records import THROTTLE, THROTTLED_UNTIL
from arq_jobs._jobs.states import JobState
from arq_jobs._keys import Keys
from arq_jobs._schedules.cron import Cron
from arq_jobs._schedules.views import fire
from arq_jobs._tasks.context import JobContext
from arq_jobs._tasks.registry import TaskInput, TaskRegistry, task
from arq_jobs._worker_registry import WorkerBeat, WorkerTotals
from arq_jobs._workflows.engine import Workflows
from arq_jobs._workflows.status import WorkflowState, WorkflowStatus
from tests.integration.tasks.scheduled import record_tick
from tests.integration.tasks.workflow_steps import wf_add, wf_double, wf_fail_always
from tests.shipped import registry as shipped
from workers.tasks.noop import NoopInput, noop
from workers.tasks.reports import ReportInput, generate_report

from .conftest import Invoke, RunWorker, make_settings
from .test_dashboard_workflows import run_until_ended


def output_json(result: Any) -> Any:
    assert result.exit_code == 0, (result.exit_code, result.stdout, result.stderr)
    return json.loads(result.stdout)


def assert_error(result: Any, code: ExitCode, line: str) -> None:
    assert (result.exit_code, result.stderr, result.stdout) == (code, f"error: {line}\n", "")


async def test_enqueue_prints_the_accepted_job_and_status_reads_it(
    invoke: Invoke, job_client: JobClient
) -> None:
    enqueued = output_json(await invoke("enqueue", "noop", "--json", '{"value": [1, "a"]}', "-o", "json"))
    job_id = enqueued["job_id"]
    assert enqueued == {
        "job_id": job_id,
        "task": "noop",
        "status": "pending",
        "scheduled_for": None,
        "retry_of": None,
        "idempotent_replay": False,
    }
    assert (await job_client.status(job_id)).status is JobState.PENDING

    status = output_json(await invoke("status", job_id, "--json"))
    assert {k: status[k] for k in ("job_id", "task", "queue", "status", "attempt", "max_attempts")} == {
        "job_id": job_id,
        "task": "noop",
        "queue": "default",
        "status": "pending",
        "attempt": 0,
        "max_attempts": 3,
    }
    assert (status["result"], status["error"], status["is_terminal"]) == (None, None, False)

    table = await invoke("status", job_id)
    assert table.exit_code == 0
    rows = {line.split()[0]: line.split()[1:] for line in table.stdout.splitlines() if line.strip()}
    assert rows["job_id"] == [job_id] and rows["status"] == ["pending"] and rows["attempt"] == ["0/3"]
    assert "result" not in rows and "error" not in rows


async def test_enqueue_table_and_default_payload(invoke: Invoke, job_client: JobClient) -> None:
    result = await invoke("enqueue", "generate_report")
    assert result.exit_code == 0 and result.stderr == ""
    header, rule, row = result.stdout.strip("\n").splitlines()
    assert header.split() == ["JOB", "ID", "TASK", "STATUS", "SCHEDULED", "FOR", "RETRY", "OF"]
    job_id, task, state = row.split()
    assert (task, state) == ("generate_report", "pending")
    status = await job_client.status(job_id)
    assert status.task == "generate_report"


async def test_enqueue_on_another_queue(invoke: Invoke, job_client: JobClient) -> None:
    enqueued = output_json(await invoke("enqueue", "noop", "--queue", "high", "-o", "json"))
    assert (await job_client.status(enqueued["job_id"])).queue == "high"
    assert_error(
        await invoke("enqueue", "noop", "--queue", "urgent"),
        ExitCode.INVALID_INPUT,
        "no queue named 'urgent' is configured; the queues are high, default, low",
    )


async def test_enqueue_errors_are_one_line_with_their_exit_code(invoke: Invoke) -> None:
    assert_error(
        await invoke("enqueue", "nope"),
        ExitCode.NOT_FOUND,
        "no task named 'nope' is registered (known: noop, generate_report, send_webhook)",
    )
    assert_error(
        await invoke("enqueue", "generate_report", "--json", '{"rows": "many"}'),
        ExitCode.INVALID_INPUT,
        "invalid input for task 'generate_report': rows: Input should be a valid integer, unable to parse string as an integer",
    )
    assert_error(
        await invoke("enqueue", "send_webhook", "--json", '{"payload": {}}'),
        ExitCode.INVALID_INPUT,
        "invalid input for task 'send_webhook': url: Field required",
    )
    assert_error(
        await invoke("enqueue", "noop", "--json", ""),
        ExitCode.INVALID_INPUT,
        "--json is not valid JSON: Expecting value at line 1 column 1",
    )
    assert_error(
        await invoke("enqueue", "noop", "-j", '{"value": 1,}'),
        ExitCode.INVALID_INPUT,
        "--json is not valid JSON: Expecting property name enclosed in double quotes at line 1 column 13",
    )
    assert_error(
        await invoke("enqueue", "noop", "--json", '{"value": NaN}'),
        ExitCode.INVALID_INPUT,
        "--json is not valid JSON: NaN is not allowed (JSON has no NaN)",
    )
    assert_error(
        await invoke("enqueue", "noop", "--json", "[1]"),
        ExitCode.INVALID_INPUT,
        "invalid input for task 'noop': (body): Input should be a valid dictionary or instance of NoopInput",
    )
    assert_error(
        await invoke("enqueue", "noop", "--delay", "5", "--run-at", "2031-01-01T09:00:00Z"),
        ExitCode.INVALID_INPUT,
        "give either delay or run_at, not both",
    )
    assert_error(
        await invoke("enqueue", "noop", "--run-at", "2031-01-01T09:00:00"),
        ExitCode.INVALID_INPUT,
        "run_at must include a timezone",
    )
    assert_error(
        await invoke("enqueue", "noop", "--run-at", "tomorrow"),
        ExitCode.INVALID_INPUT,
        "--run-at is not an ISO-8601 time: 'tomorrow' (e.g. 2031-01-01T09:00:00Z)",
    )
    assert_error(
        await invoke("enqueue", "noop", "--delay", "-1"),
        ExitCode.INVALID_INPUT,
        "delay must be a number of seconds from 0 to 31536000 (JOBS_MAX_SCHEDULE_AHEAD_S)",
    )
    usage = await invoke("enqueue", "noop", "--idempotency-key", "has space")
    assert usage.exit_code == ExitCode.USAGE and "visible ASCII" in usage.stderr


async def test_delay_run_at_and_idempotency_key(invoke: Invoke, job_client: JobClient) -> None:
    delayed = output_json(await invoke("enqueue", "noop", "--delay", "600", "-o", "json"))
    assert delayed["status"] == "scheduled"
    scheduled = datetime.fromisoformat(delayed["scheduled_for"])
    assert 595 < (scheduled - datetime.now(UTC)).total_seconds() <= 600

    when = (datetime.now(UTC) + timedelta(days=30)).replace(hour=8, minute=0, second=0, microsecond=0)
    plus_one = when.astimezone(timezone(timedelta(hours=1))).isoformat()  # 09:00:00+01:00
    at = output_json(await invoke("enqueue", "noop", "--run-at", plus_one, "-o", "json"))
    assert (at["status"], at["scheduled_for"]) == ("scheduled", when.strftime("%Y-%m-%dT08:00:00Z"))

    args = ("enqueue", "noop", "--json", '{"value": 42}', "--idempotency-key", "order-42", "-o", "json")
    first = output_json(await invoke(*args))
    again = output_json(await invoke(*args))
    assert again == {**first, "idempotent_replay": True}
    conflict = await invoke("enqueue", "noop", "--json", '{"value": 43}', "--idempotency-key", "order-42")
    assert_error(
        conflict,
        ExitCode.CONFLICT,
        f"Idempotency-Key 'order-42' was already used for a different request (task 'noop', job {first['job_id']}); use a new key for a new request",
    )


async def test_cancel_prints_the_resulting_state(invoke: Invoke, job_client: JobClient) -> None:
    job = await job_client.enqueue(noop, NoopInput(value=1), delay=600)
    result = await invoke("cancel", job.job_id)
    assert result.exit_code == 0
    assert result.stdout.splitlines()[0] == f"job {job.job_id} cancelled"
    assert (await job_client.status(job.job_id)).status is JobState.CANCELLED

    assert_error(
        await invoke("cancel", job.job_id),
        ExitCode.CONFLICT,
        f"job {job.job_id} has already ended (cancelled); only unfinished jobs can be cancelled",
    )
    assert_error(
        await invoke("cancel", "abc"),
        ExitCode.NOT_FOUND,
        "no job with id 'abc' (unknown, or its record has expired)",
    )
    other = await job_client.enqueue(noop, NoopInput(value=2), delay=600)
    cancelled = output_json(await invoke("cancel", other.job_id, "--json"))
    assert (cancelled["job_id"], cancelled["status"], cancelled["is_terminal"]) == (
        other.job_id,
        "cancelled",
        True,
    )


async def test_status_of_an_unknown_job(invoke: Invoke) -> None:
    assert_error(
        await invoke("status", "abc"),
        ExitCode.NOT_FOUND,
        "no job with id 'abc' (unknown, or its record has expired)",
    )


async def test_jobs_lists_by_state_and_pages(
    invoke: Invoke, job_client: JobClient, run_worker: RunWorker
) -> None:
    done = [(await job_client.enqueue(noop, NoopInput(value=n))).job_id for n in range(3)]
    await run_worker()
    waiting = (await job_client.enqueue(noop, NoopInput(value=9), delay=600)).job_id

    succeeded = output_json(await invoke("jobs", "--state", "succeeded", "--json"))
    assert sorted(item["job_id"] for item in succeeded["items"]) == sorted(done)
    assert {item["status"] for item in succeeded["items"]} == {"succeeded"}
    assert succeeded["next_cursor"] is None
    scheduled = output_json(await invoke("jobs", "--state", "scheduled", "--task", "noop", "--json"))
    assert [item["job_id"] for item in scheduled["items"]] == [waiting]

    first = output_json(await invoke("jobs", "--limit", "2", "--json"))
    assert len(first["items"]) == 2 and first["next_cursor"] is not None
    rest = output_json(await invoke("jobs", "--limit", "2", "--cursor", first["next_cursor"], "--json"))
    assert rest["next_cursor"] is None
    seen = [item["job_id"] for item in first["items"] + rest["items"]]
    assert sorted(seen) == sorted([*done, waiting])

    table = await invoke("jobs", "--limit", "2")
    assert table.exit_code == 0
    lines = table.stdout.splitlines()
    assert lines[-1] == f"next page: --cursor {first['next_cursor']}"
    assert [line.split()[0] for line in lines[2:4]] == [item["job_id"] for item in first["items"]]

    empty = await invoke("jobs", "--state", "failed")
    assert empty.exit_code == 0 and empty.stdout.splitlines()[-1] == "no jobs"

    for args in (["--state", "nonsense"], ["--limit", "0"], ["--cursor", "not-a-cursor"]):
        usage = await invoke("jobs", *args)
        assert usage.exit_code == ExitCode.USAGE, args


async def test_queues_counts_by_state(invoke: Invoke, job_client: JobClient, run_worker: RunWorker) -> None:
    await job_client.enqueue(noop, NoopInput(value=1))
    await run_worker()
    await job_client.enqueue(noop, NoopInput(value=2))
    await job_client.enqueue(noop, NoopInput(value=3), delay=600)
    queues = output_json(await invoke("queues", "--json"))
    assert [q["name"] for q in queues] == ["high", "default", "low"]  # every configured queue, in order
    default = queues[1]
    oldest = default.pop("oldest_pending_age_s")
    assert oldest is not None and 0 <= oldest < 5
    assert default == {
        "name": "default",
        "pending": 1,
        "scheduled": 1,
        "running": 0,
        "retrying": 0,
        "succeeded": 1,
        "failed": 0,
        "cancelled": 0,
        "dead_lettered": 0,
        "workers": 0,
    }
    table = await invoke("queues")
    row = table.stdout.splitlines()[3].split()
    assert row[:10] == ["default", "1", "1", "0", "0", "1", "0", "0", "0", row[9]]
    assert row[10] == "0"


async def test_workers_lists_heartbeats(invoke: Invoke, job_client: JobClient, settings: Settings) -> None:
    empty = await invoke("workers")
    assert (empty.exit_code, empty.stdout) == (0, "no workers\n")
    assert output_json(await invoke("workers", "--json")) == []

    beat = WorkerBeat(
        worker_id="host:1:abc",
        host="host",
        pid=1,
        queues=["default"],
        concurrency=100,
        started_at=datetime(2026, 1, 1, tzinfo=UTC),
        running=0,
        running_jobs=[],
        totals=WorkerTotals(succeeded=5, failed=1),
        registry_version="0123456789ab",
        version="0.1.0",
    )
    async with job_client.redis.pipeline(transaction=True) as pipe:
        job_client.worker_registry.beat(pipe, beat, now_ms())
        await pipe.execute()
    listed = output_json(await invoke("workers", "--json"))
    assert len(listed) == 1
    assert {k: listed[0][k] for k in ("worker_id", "state", "queues", "totals")} == {
        "worker_id": "host:1:abc",
        "state": "alive",
        "queues": ["default"],
        "totals": {"succeeded": 5, "failed": 1, "retried": 0, "cancelled": 0},
    }
    table = await invoke("workers")
    assert table.stdout.splitlines()[2].split()[:9] == [
        "host:1:abc",
        "alive",
        "host",
        "1",
        "default",
        "0/100",
        "5",
        "1",
        "0",
    ]


async def add_dead_letters(client: JobClient, *names: str, task: str = "noop") -> None:
    """Dead letters for `names` (oldest first), with a noop input that can be retried."""
    base = now_ms() - 60_000
    async with client.redis.pipeline(transaction=True) as pipe:
        for n, name in enumerate(names):
            letter = build_dead_letter(
                name,
                None,
                task=task,
                payload={"value": name},
                error=DeadLetterError(
                    type="RuntimeError", message=f"{name} broke", traceback="Traceback: ..."
                ),
                reason=FailureReason.EXHAUSTED,
                attempts=3,
                failed_ms=base + n * 1000,
                worker="host:1",
            )
            client.dead_letters.add(pipe, letter, now_ms())
        await pipe.execute()


async def test_dead_list_and_show(invoke: Invoke, job_client: JobClient) -> None:
    await add_dead_letters(job_client, "dead-a", "dead-b", "dead-c")
    page = output_json(await invoke("dead", "list", "--json"))
    assert [item["job_id"] for item in page["items"]] == ["dead-c", "dead-b", "dead-a"]
    assert page["next_cursor"] is None
    first = output_json(await invoke("dead", "list", "--limit", "2", "--json"))
    assert [item["job_id"] for item in first["items"]] == ["dead-c", "dead-b"]
    rest = output_json(await invoke("dead", "list", "--cursor", first["next_cursor"], "--json"))
    assert [item["job_id"] for item in rest["items"]] == ["dead-a"]
    assert output_json(await invoke("dead", "list", "--task", "send_webhook", "--json")) == {
        "items": [],
        "next_cursor": None,
    }

    shown = output_json(await invoke("dead", "show", "dead-b", "--json"))
    assert {k: shown[k] for k in ("job_id", "task", "input", "error", "reason", "attempts", "worker")} == {
        "job_id": "dead-b",
        "task": "noop",
        "input": {"value": "dead-b"},
        "error": {"type": "RuntimeError", "message": "dead-b broke", "traceback": "Traceback: ..."},
        "reason": "attempts_exhausted",
        "attempts": 3,
        "worker": "host:1",
    }
    table = await invoke("dead", "show", "dead-b")
    assert table.exit_code == 0
    assert table.stdout.splitlines()[-2:] == ["traceback:", "Traceback: ..."]
    assert "RuntimeError: dead-b broke" in table.stdout
    assert_error(
        await invoke("dead", "show", "nope"),
        ExitCode.NOT_FOUND,
        "no dead letter for job id 'nope' (unknown, deleted, retried or expired)",
    )


async def test_dead_retry_and_delete_one(invoke: Invoke, job_client: JobClient) -> None:
    await add_dead_letters(job_client, "dead-a", "dead-b")
    retried = output_json(await invoke("dead", "retry", "dead-a", "--json"))
    assert (retried["task"], retried["status"], retried["retry_of"]) == ("noop", "pending", "dead-a")
    status = await job_client.status(retried["job_id"])
    assert (status.retry_of, status.status) == ("dead-a", JobState.PENDING)
    assert_error(
        await invoke("dead", "retry", "dead-a"),
        ExitCode.NOT_FOUND,
        "no dead letter for job id 'dead-a' (unknown, deleted, retried or expired)",
    )

    deleted = await invoke("dead", "delete", "dead-b")
    assert (deleted.exit_code, deleted.stdout) == (0, "deleted dead letter dead-b\n")
    assert_error(
        await invoke("dead", "delete", "dead-b", "--json"),
        ExitCode.NOT_FOUND,
        "no dead letter for job id 'dead-b' (unknown, deleted, retried or expired)",
    )
    assert output_json(await invoke("dead", "list", "--json"))["items"] == []

    for args in (["retry"], ["retry", "x", "--all"], ["delete"], ["delete", "x", "--task", "noop"]):
        usage = await invoke("dead", *args)
        assert usage.exit_code == ExitCode.USAGE, args


async def test_dead_delete_all_asks_first(invoke: Invoke, job_client: JobClient) -> None:
    await add_dead_letters(job_client, "dead-a", "dead-b", "dead-c")
    declined = await invoke("dead", "delete", "--all", input="n\n")
    assert declined.exit_code == ExitCode.JOB_FAILED
    assert (declined.stdout, declined.stderr) == (
        "",
        "Delete all 3 dead letters? [y/N]: error: nothing done: delete not confirmed\n",
    )
    no_answer = await invoke("dead", "delete", "--all", input="")
    assert no_answer.exit_code == ExitCode.JOB_FAILED
    assert (
        no_answer.stderr == "Delete all 3 dead letters? [y/N]: \nerror: nothing done: delete not confirmed\n"
    )
    assert len(output_json(await invoke("dead", "list", "--json"))["items"]) == 3

    agreed = await invoke("dead", "delete", "--all", "--json", input="y\n")
    assert output_json(agreed) == {"deleted": ["dead-c", "dead-b", "dead-a"], "failed": []}
    assert output_json(await invoke("dead", "list", "--json"))["items"] == []

    nothing = await invoke("dead", "delete", "--all")
    assert (nothing.exit_code, nothing.stderr) == (0, "no dead letters\n")

    await add_dead_letters(job_client, "dead-z")
    one = await invoke("dead", "retry", "--all", "--task", "noop", input="no\n")
    assert (
        one.stderr
        == "Retry the 1 dead letter of task 'noop'? [y/N]: error: nothing done: retry not confirmed\n"
    )
    none_of_task = await invoke("dead", "retry", "--all", "--task", "send_webhook")
    assert (none_of_task.exit_code, none_of_task.stderr) == (0, "no dead letters of task 'send_webhook'\n")


async def test_dead_retry_all_of_a_task_reports_each_failure(invoke: Invoke, job_client: JobClient) -> None:
    await add_dead_letters(job_client, "dead-a", "dead-b")
    await add_dead_letters(job_client, "gone-a", task="retired_task")
    await add_dead_letters(job_client, "hook-a", task="send_webhook")

    only_noop = await invoke("dead", "retry", "--all", "--task", "noop", "--yes", "--json")
    body = output_json(only_noop)
    assert [job["retry_of"] for job in body["retried"]] == ["dead-b", "dead-a"]
    assert body["failed"] == []

    rest = await invoke("dead", "retry", "--all", "--yes", "--json")
    assert rest.exit_code == ExitCode.INVALID_INPUT  # the first failure's
    body = json.loads(rest.stdout)
    assert body["retried"] == []
    assert body["failed"] == [
        {
            "job_id": "hook-a",
            "error": "invalid_input",
            "message": "invalid input for task 'send_webhook': url: Field required; payload: Field required",
        },
        {
            "job_id": "gone-a",
            "error": "unknown_task",
            "message": "no task named 'retired_task' is registered (known: noop, generate_report, send_webhook)",
        },
    ]
    assert rest.stderr.splitlines() == [
        "error: dead letter hook-a: invalid input for task 'send_webhook': url: Field required; payload: Field required",
        "error: dead letter gone-a: no task named 'retired_task' is registered (known: noop, generate_report, send_webhook)",
    ]


async def test_unreachable_redis_names_the_url_without_its_password(registry: TaskRegistry) -> None:
    from arq_jobs._connection import create_arq

    settings = make_settings(redis_url="redis://user:s3cret@127.0.0.1:1/0")

    @asynccontextmanager
    async def opener() -> AsyncIterator[JobClient]:
        async with client_session(settings, registry, create_arq(settings)) as client:
            yield client

    result = await asyncio.to_thread(CliRunner().invoke, app, ["queues"], obj=opener)
    assert result.exit_code == ExitCode.REDIS_UNAVAILABLE and result.stdout == ""
    assert result.stderr.startswith("error: Redis at redis://user:***@127.0.0.1:1/0 is unreachable: ")
    assert "s3cret" not in result.stderr and result.stderr.count("\n") == 1


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[pytest.MonkeyPatch]:
    """The CLI reads its settings from the environment, as the API does (no .env here)."""
    config.get_settings.cache_clear()
    monkeypatch.chdir(tmp_path)
    yield monkeypatch
    config.get_settings.cache_clear()


def test_settings_come_from_the_environment(environment: pytest.MonkeyPatch) -> None:
    environment.setenv("JOBS_REDIS_URL", "redis://127.0.0.1:1/0")
    result = CliRunner().invoke(app, ["status", "abc"])
    assert result.exit_code == ExitCode.REDIS_UNAVAILABLE
    assert result.stderr.startswith("error: Redis at redis://127.0.0.1:1/0 is unreachable: ")

    config.get_settings.cache_clear()
    environment.setenv("JOBS_WORKER_CONCURRENCY", "0")
    assert_error(
        CliRunner().invoke(app, ["queues"]),
        ExitCode.SETTINGS,
        "invalid settings: JOBS_WORKER_CONCURRENCY: Input should be greater than 0",
    )
    config.get_settings.cache_clear()
    environment.delenv("JOBS_WORKER_CONCURRENCY")
    environment.setenv("JOBS_TASK_PACKAGES", "workers.tasks,no_such_package")
    assert_error(
        CliRunner().invoke(app, ["queues"]),
        ExitCode.SETTINGS,
        "invalid settings: JOBS_TASK_PACKAGES: cannot import 'no_such_package'",
    )


def test_display_url_masks_only_the_password() -> None:
    assert display_url("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
    assert display_url("redis://:pw@redis:6379/0") == "redis://:***@redis:6379/0"
    assert display_url("rediss://user:p%40ss@redis/1") == "rediss://user:***@redis/1"


async def test_follow_replays_every_event_of_a_finished_job(
    job_client: JobClient, run_worker: RunWorker
) -> None:
    job = await job_client.enqueue(generate_report, ReportInput(rows=10, step_delay_s=0))
    await run_worker()
    seen: list[str] = []
    final = await follow(job_client, job.job_id, lambda status: seen.append(status_line(status)))
    assert seen == [
        "pending",
        "running",
        "running 0/4 (0%) starting",
        "running 1/4 (25%) generated 10 rows",
        "running 2/4 (50%) aggregated 5 regions",
        "running 3/4 (75%) computed totals and percentiles",
        "running 4/4 (100%) report stored",
        "succeeded 4/4 (100%) report stored",
    ]
    assert final.status is JobState.SUCCEEDED
    assert isinstance(final.result, dict) and final.result["rows"] == 10


async def test_follow_reads_the_status_while_no_event_comes(job_client: JobClient) -> None:
    # a delayed job becoming due has no event of its own: the idle read shows it pending
    job = await job_client.enqueue(noop, NoopInput(value=1), delay=0.3)
    seen: list[str] = []
    due = asyncio.Event()

    def record(status: Any) -> None:
        seen.append(status_line(status))
        if status.status is JobState.PENDING:
            due.set()

    waiting = asyncio.ensure_future(follow(job_client, job.job_id, record))
    await asyncio.wait_for(due.wait(), 5)
    await job_client.cancel(job.job_id)
    final = await asyncio.wait_for(waiting, 5)
    assert final.status is JobState.CANCELLED
    assert seen == ["scheduled", "pending", "cancelled"]


def view_output(terminal: bool, statuses: list[Any]) -> str:
    stream = io.StringIO()
    console = Console(file=stream, force_terminal=terminal, width=100, color_system=None)
    with ProgressView(console) as view:
        for status in statuses:
            view(status)
    return stream.getvalue()


async def test_progress_view_prints_one_line_per_change_or_draws_a_bar(
    job_client: JobClient, run_worker: RunWorker
) -> None:
    job = await job_client.enqueue(generate_report, ReportInput(rows=10, step_delay_s=0))
    await run_worker()
    statuses = [event.status for event in await job_client.events.read(job.job_id, "0")]
    statuses.insert(3, statuses[2])  # a repeat is not printed again
    assert view_output(False, statuses).splitlines() == [
        "pending",
        "running",
        "running 0/4 (0%) starting",
        "running 1/4 (25%) generated 10 rows",
        "running 2/4 (50%) aggregated 5 regions",
        "running 3/4 (75%) computed totals and percentiles",
        "running 4/4 (100%) report stored",
        "succeeded 4/4 (100%) report stored",
    ]
    drawn = view_output(True, statuses)
    assert "succeeded: report stored" in drawn and "4/4" in drawn


def test_every_exit_code_is_explained_in_the_help() -> None:
    from arq_jobs._cli.errors import MEANINGS, exit_codes_help

    assert set(MEANINGS) == set(ExitCode)
    assert "; 5 Redis unreachable, or refusing the request;" in exit_codes_help()
    assert exit_codes_help() in str(app.info.epilog)


def field_rows(stdout: str) -> dict[str, str]:
    """A fields table's `name  value` lines (a value's continuation lines left out)."""
    found = {}
    for line in stdout.splitlines():
        if line.strip() and not line.startswith(" " * 3):
            name, _, value = line.strip().partition(" ")
            found[name] = value.strip()
    return found


async def test_status_shows_the_workflow_schedule_and_throttle_of_a_job(
    invoke: Invoke, job_client: JobClient, arq_redis: ArqRedis
) -> None:
    step = await job_client.enqueue(noop, NoopInput(value=1), job_id="step-1", workflow="wf123:0:0")
    until = datetime(2031, 1, 1, 9, 0, 5, tzinfo=UTC)
    await arq_redis.hset(  # type: ignore[misc]
        Keys("unit").record(step.job_id),
        mapping={THROTTLE: "concurrency", THROTTLED_UNTIL: round(until.timestamp() * 1000)},
    )
    table = await invoke("status", step.job_id)
    assert table.exit_code == 0
    rows = field_rows(table.stdout)
    assert rows["workflow_id"] == "wf123"
    assert rows["throttled"] == "waiting for its task's concurrency limit, next try 2031-01-01T09:00:05+00:00"
    assert "schedule" not in rows
    body = output_json(await invoke("status", step.job_id, "--json"))
    assert (body["workflow_id"], body["schedule"], body["throttled"]) == (
        "wf123",
        None,
        {"reason": "concurrency", "next_try_at": "2031-01-01T09:00:05Z"},
    )

    tick = await job_client.enqueue(noop, NoopInput(value=2), job_id="cron-nightly-1", schedule="nightly")
    rows = field_rows((await invoke("status", tick.job_id)).stdout)
    assert rows["schedule"] == "nightly"
    assert "workflow_id" not in rows and "throttled" not in rows


class Cleanup(TaskInput):
    older_than_days: int


@task(queue="low", schedule=Cron("30 3 * * *", timezone="Europe/Paris", input={"older_than_days": 30}, name="nightly_cleanup"))  # fmt: skip
async def cleanup(ctx: JobContext, data: Cleanup) -> int:
    """Delete old exports."""
    return data.older_than_days


class TestSchedules:
    @pytest.fixture
    def registry(self) -> TaskRegistry:
        return TaskRegistry([*shipped, cleanup, record_tick])

    @pytest.fixture
    def settings(self) -> Settings:
        return make_settings(disabled_schedules=("every_second",))

    async def test_schedules_lists_each_with_its_next_and_last_run(
        self, invoke: Invoke, job_client: JobClient, registry: TaskRegistry
    ) -> None:
        nightly = registry.schedules[0]
        before = nightly.cron.next_after(datetime.now(UTC))
        listed = output_json(await invoke("schedules", "-o", "json"))
        after = nightly.cron.next_after(datetime.now(UTC))
        assert listed[0].pop("next_run_at") in (iso_z(before), iso_z(after))
        assert listed == [
            {
                "name": "nightly_cleanup",
                "task": "cleanup",
                "cron": "30 3 * * *",
                "timezone": "Europe/Paris",
                "queue": "low",
                "enabled": True,
                "last_run": None,
            },
            {
                "name": "every_second",
                "task": "record_tick",
                "cron": "* * * * * *",
                "timezone": "UTC",
                "queue": "default",
                "enabled": False,
                "next_run_at": None,
                "last_run": None,
            },
        ]

        job = await fire(job_client, nightly, datetime(2026, 11, 30, 2, 30, tzinfo=UTC))
        assert output_json(await invoke("schedules", "--json"))[0]["last_run"] == {
            "job_id": job.job_id,
            "scheduled_for": "2026-11-30T02:30:00Z",
            "status": "pending",
        }
        table = await invoke("schedules")
        assert table.exit_code == 0 and table.stderr == ""
        header, _, first, second = table.stdout.splitlines()
        assert header.split() == [
            "NAME", "TASK", "CRON", "TIMEZONE", "QUEUE", "ENABLED", "NEXT", "RUN", "LAST", "RUN", "LAST", "JOB",
            "LAST", "STATUS",
        ]  # fmt: skip
        cells = first.split()
        assert cells[:11] == [
            "nightly_cleanup",
            "cleanup",
            "30",
            "3",
            "*",
            "*",
            "*",
            "Europe/Paris",
            "low",
            "yes",
            cells[10],
        ]
        assert cells[11:] == ["2026-11-30T02:30:00+00:00", job.job_id, "pending"]
        assert second.split() == [
            "every_second",
            "record_tick",
            "*",
            "*",
            "*",
            "*",
            "*",
            "*",
            "UTC",
            "default",
            "no",
        ]


async def test_schedules_when_the_tasks_declare_none(invoke: Invoke) -> None:
    empty = await invoke("schedules")
    assert (empty.exit_code, empty.stdout) == (0, "no schedules\n")
    assert output_json(await invoke("schedules", "--json")) == []


def iso_z(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


ADD = {"task": "wf_add", "input": {"a": 2, "b": 3}}


def said(stderr: str) -> list[str]:
    """The CLI's own lines on stderr: without the core's log lines, which go there in these tests
    once an earlier test's worker has configured logging (a real CLI process leaves them silent)."""
    return [line for line in stderr.splitlines() if not line.startswith('{"timestamp"')]


def chain(*steps: dict[str, Any]) -> str:
    return json.dumps({"type": "chain", "steps": list(steps)})


async def until_finished(pending: asyncio.Future[Any], run_worker: RunWorker) -> Any:
    """Burst workers (in this loop) while a command (in its thread) waits for them."""
    for _ in range(50):
        await run_worker()
        finished, _ = await asyncio.wait({pending}, timeout=0.3)
        if finished:
            return pending.result()
    raise AssertionError("the command did not finish")


class TestWorkflowCommands:
    @pytest.fixture
    def registry(self) -> TaskRegistry:
        return TaskRegistry([*shipped, wf_add, wf_double, wf_fail_always])

    async def test_start_shows_the_new_workflow_and_its_step_jobs(
        self, invoke: Invoke, job_client: JobClient
    ) -> None:
        body = output_json(
            await invoke("workflow", "start", "--json", chain(ADD, {"task": "wf_double"}), "-o", "json")
        )
        workflow_id = body["workflow_id"]
        assert body == (await Workflows(job_client).status(workflow_id)).model_dump(mode="json")
        assert (body["type"], body["status"], body["is_terminal"], body["result"], body["error"]) == (
            "chain",
            "pending",
            False,
            None,
            None,
        )
        assert [(s["path"], s["task"], s["status"]) for s in body["steps"]] == [
            ("steps[0]", "wf_add", "pending"),
            ("steps[1]", "wf_double", "pending"),
        ]
        first = await job_client.status(body["steps"][0]["job_id"])
        assert (first.task, first.workflow_id, first.status) == ("wf_add", workflow_id, JobState.PENDING)

        table = await invoke("workflow", "start", "--json", chain(ADD))
        assert table.exit_code == 0 and said(table.stderr) == []
        rows = field_rows(table.stdout)
        assert (rows["type"], rows["status"]) == ("chain", "pending")
        steps = table.stdout.splitlines()[-1].split()
        job_id = (await Workflows(job_client).status(rows["workflow_id"])).steps[0].job_id
        assert steps == ["steps[0]", "wf_add", job_id, "pending"]

    async def test_an_invalid_spec_is_exit_4_naming_the_step(
        self, invoke: Invoke, job_client: JobClient
    ) -> None:
        assert_error(
            await invoke("workflow", "start", "--json", chain(ADD, {"task": "wf_double", "input": {"n": 1}})),
            ExitCode.INVALID_INPUT,
            "invalid workflow: steps[1] (wf_double): only the steps of a workflow's first stage take an input; "
            "this one is given the previous step's result (or a group's list of results): remove its input",
        )
        assert_error(
            await invoke(
                "workflow", "start", "--json", chain({"task": "wf_add", "input": {"a": "x", "b": 1}})
            ),
            ExitCode.INVALID_INPUT,
            "invalid workflow: steps[0] (wf_add): invalid input for task 'wf_add': "
            "a: Input should be a valid integer, unable to parse string as an integer",
        )
        assert_error(
            await invoke("workflow", "start", "--json", chain(ADD, {"task": "nope"})),
            ExitCode.INVALID_INPUT,
            "invalid workflow: steps[1] (nope): no task named 'nope' is registered",
        )
        assert_error(
            await invoke("workflow", "start", "--json", "{type: chain}"),
            ExitCode.INVALID_INPUT,
            "--json is not valid JSON: Expecting property name enclosed in double quotes at line 1 column 2",
        )
        usage = await invoke("workflow", "start")
        assert usage.exit_code == ExitCode.USAGE and "Missing option '--json'" in usage.stderr
        # nothing was stored or enqueued by any of these
        assert output_json(await invoke("jobs", "--json")) == {"items": [], "next_cursor": None}

    async def test_show_a_failed_workflow_and_an_unknown_one(
        self, invoke: Invoke, job_client: JobClient, run_worker: RunWorker
    ) -> None:
        workflow_id = output_json(
            await invoke(
                "workflow",
                "start",
                "--json",
                chain(ADD, {"task": "wf_fail_always"}, {"task": "wf_double"}),
                "-o",
                "json",
            )
        )["workflow_id"]
        status = await run_until_ended(job_client, run_worker, workflow_id)
        body = output_json(await invoke("workflow", "show", workflow_id, "--json"))
        assert body == status.model_dump(mode="json")
        assert body["status"] == "failed"
        assert body["error"]["message"] == "step steps[1] (wf_fail_always) failed: cannot take 5"

        table = await invoke("workflow", "show", workflow_id)
        assert table.exit_code == 0
        rows = field_rows(table.stdout)
        assert rows["status"] == "failed"
        assert rows["error"] == "TaskError: step steps[1] (wf_fail_always) failed: cannot take 5"
        assert rows["error_step"] == "steps[1]"
        steps = [line.split() for line in table.stdout.splitlines()[-3:]]
        assert steps == [
            ["steps[0]", "wf_add", status.steps[0].job_id, "succeeded", '{"n":5}'],
            [
                "steps[1]",
                "wf_fail_always",
                status.steps[1].job_id,
                "failed",
                "TaskError:",
                "cannot",
                "take",
                "5",
            ],
            ["steps[2]", "wf_double", status.steps[2].job_id, "cancelled"],
        ]
        assert_error(
            await invoke("workflow", "show", "nope"),
            ExitCode.NOT_FOUND,
            "no workflow with id 'nope' (unknown, or it has expired)",
        )

    async def test_cancel_then_cancel_again_and_an_unknown_id(
        self, invoke: Invoke, job_client: JobClient
    ) -> None:
        body = output_json(
            await invoke("workflow", "start", "--json", chain(ADD, {"task": "wf_double"}), "-o", "json")
        )
        workflow_id = body["workflow_id"]
        cancelled = await invoke("workflow", "cancel", workflow_id)
        assert cancelled.exit_code == 0 and said(cancelled.stderr) == []
        assert cancelled.stdout.splitlines()[0] == f"workflow {workflow_id} cancelled"
        assert [line.split()[3] for line in cancelled.stdout.splitlines()[-2:]] == ["cancelled", "cancelled"]
        assert (await Workflows(job_client).status(workflow_id)).status is WorkflowState.CANCELLED
        assert (await job_client.status(body["steps"][0]["job_id"])).status is JobState.CANCELLED

        assert_error(
            await invoke("workflow", "cancel", workflow_id),
            ExitCode.CONFLICT,
            f"workflow {workflow_id} has already ended (cancelled); only unfinished workflows can be cancelled",
        )
        assert_error(
            await invoke("workflow", "cancel", "nope"),
            ExitCode.NOT_FOUND,
            "no workflow with id 'nope' (unknown, or it has expired)",
        )
        other = output_json(await invoke("workflow", "start", "--json", chain(ADD), "-o", "json"))
        as_json = output_json(await invoke("workflow", "cancel", other["workflow_id"], "--json"))
        assert (as_json["status"], as_json["is_terminal"], as_json["cancelled_at"] is not None) == (
            "cancelled",
            True,
            True,
        )

    async def test_start_wait_follows_the_workflow_until_it_succeeds(
        self, invoke: Invoke, run_worker: RunWorker
    ) -> None:
        waiting = asyncio.ensure_future(
            invoke("workflow", "start", "--json", chain(ADD, {"task": "wf_double"}), "--wait", "-o", "json")
        )
        done = await until_finished(waiting, run_worker)
        body = output_json(done)
        assert (body["status"], body["result"]) == ("succeeded", {"n": 10})
        lines = said(done.stderr)
        assert lines[0] == (
            f"workflow {body['workflow_id']} started; waiting for it to end (Ctrl-C stops waiting, not the workflow)"
        )
        assert lines[-1] == "succeeded 2/2 steps succeeded"
        assert set(lines[1:-1]) <= {
            "pending 0/2 steps succeeded",
            "running 0/2 steps succeeded; running steps[0]",
            "running 1/2 steps succeeded",
            "running 1/2 steps succeeded; running steps[1]",
        }
        assert len(lines[1:-1]) == len(set(lines[1:-1]))  # a line is printed once, when it changes

    async def test_start_wait_exits_1_when_the_workflow_fails(
        self, invoke: Invoke, run_worker: RunWorker
    ) -> None:
        waiting = asyncio.ensure_future(
            invoke("workflow", "start", "--json", chain(ADD, {"task": "wf_fail_always"}), "--wait")
        )
        done = await until_finished(waiting, run_worker)
        assert done.exit_code == ExitCode.JOB_FAILED
        assert field_rows(done.stdout)["status"] == "failed"
        workflow_id = field_rows(done.stdout)["workflow_id"]
        assert said(done.stderr)[-2:] == [
            "failed 1/2 steps succeeded",
            f"error: workflow {workflow_id} failed: step steps[1] (wf_fail_always) failed: cannot take 5",
        ]


def test_workflow_lines_name_what_runs_and_print_each_change_once() -> None:
    stream = io.StringIO()
    lines = WorkflowLines(Console(file=stream, width=100, color_system=None))
    running = WorkflowStatus.model_validate(
        {
            "workflow_id": "w",
            "type": "group",
            "status": "running",
            "is_terminal": False,
            "created_at": None,
            "steps": [
                {"path": f"steps[{n}]", "stage": 0, "task": "t", "job_id": f"j{n}", "status": state}
                for n, state in enumerate(["succeeded", "running", "retrying", "pending"])
            ],
        }
    )
    for status in (running, running, running.model_copy(update={"status": WorkflowState.CANCELLED})):
        lines(status)
    assert workflow_line(running) == "running 1/4 steps succeeded; running steps[1], steps[2]"
    assert stream.getvalue().splitlines() == [
        "running 1/4 steps succeeded; running steps[1], steps[2]",
        "cancelled 1/4 steps succeeded; running steps[1], steps[2]",
    ]
