"""The `arq-jobs` CLI as an operator runs it (`python -m arq_jobs`, a real process) against the real Redis
and a real `arq workers.WorkerSettings` worker. Each test has its own key prefix, so counts are exact."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from arq_jobs._cli.errors import ExitCode
from arq_jobs._tasks.registry import TaskRegistry

from .conftest import ROOT, TASK_PACKAGES, Service, delete_prefix, service_env, start_worker

# every task of the shipped and the test task packages, in registry order
KNOWN_TASKS = ", ".join(task.name for task in TaskRegistry.discover_all(tuple(TASK_PACKAGES.split(","))))
CLI = [sys.executable, "-m", "arq_jobs"]

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def prefix(redis_url: str, key_prefix: str) -> Iterator[str]:
    name = f"{key_prefix}-cli-{uuid.uuid4().hex[:8]}"
    yield name
    delete_prefix(redis_url, name)


@pytest.fixture
def env(redis_url: str, prefix: str) -> dict[str, str]:
    return service_env(redis_url, prefix, JOBS_HEARTBEAT_S="0.5")


@pytest.fixture
def cli(env: dict[str, str]) -> Run:
    """Run `arq-jobs <args>` with `input` on stdin (none: at its end at once); `extra` entries
    override the test's environment."""

    def run(*args: str, input: str = "", **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*CLI, *args],
            cwd=ROOT,
            env={**env, **extra},
            input=input,
            capture_output=True,
            text=True,
            timeout=90,
        )

    return run


@pytest.fixture
def job_worker(redis_url: str, prefix: str, tmp_path: Path) -> Iterator[tuple[Service, str]]:
    service, worker_id = start_worker(redis_url, prefix, tmp_path, "worker", JOBS_HEARTBEAT_S="0.5")
    yield service, worker_id
    service.stop()


def ok_json(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, (result.returncode, result.stdout, result.stderr)
    return json.loads(result.stdout)


def one_error(result: subprocess.CompletedProcess[str], code: ExitCode, line: str) -> None:
    assert (result.returncode, result.stdout, result.stderr) == (code, "", f"error: {line}\n")


def eventually(check: Callable[[], Any], timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.1)
    raise AssertionError(f"{what} not seen in {timeout_s}s; last: {last}")


def test_enqueue_wait_shows_progress_and_exits_0_with_the_result(cli: Run, job_worker: Any) -> None:
    done = cli(
        "enqueue", "generate_report", "--json", '{"rows": 50, "step_delay_s": 0.1}', "--wait", "-o", "json"
    )
    status = ok_json(done)
    job_id = status["job_id"]
    assert (status["task"], status["status"], status["attempt"], status["is_terminal"]) == (
        "generate_report",
        "succeeded",
        1,
        True,
    )
    assert status["result"]["report_id"] == job_id and status["result"]["rows"] == 50
    assert {k: status["progress"][k] for k in ("step", "total", "percent", "message")} == {
        "step": 4,
        "total": 4,
        "percent": 100.0,
        "message": "report stored",
    }
    assert status["error"] is None
    assert done.stderr.splitlines() == [
        f"job {job_id} pending; waiting for it to end (Ctrl-C stops waiting, not the job)",
        "pending",
        "running",
        "running 0/4 (0%) starting",
        "running 1/4 (25%) generated 50 rows",
        "running 2/4 (50%) aggregated 5 regions",
        "running 3/4 (75%) computed totals and percentiles",
        "running 4/4 (100%) report stored",
        "succeeded 4/4 (100%) report stored",
    ]

    table = cli("enqueue", "noop", "--json", '{"value": "hi"}', "--wait")
    assert table.returncode == 0, table.stderr
    rows = {line.split()[0]: line.split()[1:] for line in table.stdout.splitlines() if line.strip()}
    assert rows["task"] == ["noop"] and rows["status"] == ["succeeded"] and rows["attempt"] == ["1/3"]
    assert rows["result"] == ["{"] and rows['"value":'] == ['"hi"']
    assert table.stderr.splitlines()[-1] == "succeeded"


def test_enqueue_wait_exits_1_when_the_job_fails(cli: Run, job_worker: Any) -> None:
    failed = cli("enqueue", "fail", "--json", '{"permanent": true}', "--wait", "-o", "json")
    assert failed.returncode == ExitCode.JOB_FAILED
    status = json.loads(failed.stdout)
    assert (status["status"], status["error"], status["dead_lettered"]) == (
        "failed",
        {"type": "PermanentError", "message": "refused for good"},
        True,
    )
    lines = failed.stderr.splitlines()
    assert lines[1:] == [
        "pending",
        "running",
        "failed",
        f"error: job {status['job_id']} failed: PermanentError: refused for good",
    ]


def test_enqueue_wait_exits_1_when_the_job_is_cancelled(
    cli: Run, env: dict[str, str], job_worker: Any
) -> None:
    waiting = subprocess.Popen(
        [*CLI, "enqueue", "nap", "--json", '{"seconds": 60}', "--wait", "--output", "json"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert waiting.stderr is not None
        first = waiting.stderr.readline()
        job_id = first.split()[1]
        assert first == f"job {job_id} pending; waiting for it to end (Ctrl-C stops waiting, not the job)\n"
        assert [waiting.stderr.readline(), waiting.stderr.readline()] == ["pending\n", "running\n"]
        cancel = cli("cancel", job_id)
        assert cancel.returncode == 0, cancel.stderr
        assert cancel.stdout.splitlines()[0] == (
            f"job {job_id} is running: cancel requested, its worker stops it within ~1 s"
        )
        out, err = waiting.communicate(timeout=15)
    finally:
        if waiting.poll() is None:
            waiting.kill()
            waiting.communicate()
    assert waiting.returncode == ExitCode.JOB_FAILED
    assert json.loads(out)["status"] == "cancelled"
    assert err.splitlines()[-2:] == ["cancelled", f"error: job {job_id} was cancelled"]


def test_status_and_cancel_of_a_delayed_job(cli: Run) -> None:
    enqueued = ok_json(cli("enqueue", "noop", "--json", '{"value": 7}', "--delay", "600", "-o", "json"))
    job_id = enqueued["job_id"]
    assert (enqueued["status"], enqueued["idempotent_replay"]) == ("scheduled", False)

    status = ok_json(cli("status", job_id, "--json"))
    assert {k: status[k] for k in ("job_id", "task", "queue", "status", "attempt", "scheduled_for")} == {
        "job_id": job_id,
        "task": "noop",
        "queue": "default",
        "status": "scheduled",
        "attempt": 0,
        "scheduled_for": enqueued["scheduled_for"],
    }
    table = cli("status", job_id)
    rows = {line.split()[0]: line.split()[1:] for line in table.stdout.splitlines() if line.strip()}
    assert rows["status"] == ["scheduled"] and rows["job_id"] == [job_id]

    cancelled = cli("cancel", job_id)
    assert (cancelled.returncode, cancelled.stderr) == (0, "")
    assert cancelled.stdout.splitlines()[0] == f"job {job_id} cancelled"
    after = ok_json(cli("status", job_id, "--json"))
    assert (after["status"], after["is_terminal"], after["finished_at"] is not None) == (
        "cancelled",
        True,
        True,
    )

    one_error(
        cli("cancel", job_id),
        ExitCode.CONFLICT,
        f"job {job_id} has already ended (cancelled); only unfinished jobs can be cancelled",
    )
    one_error(
        cli("status", "abc"), ExitCode.NOT_FOUND, "no job with id 'abc' (unknown, or its record has expired)"
    )
    one_error(
        cli("cancel", "abc"), ExitCode.NOT_FOUND, "no job with id 'abc' (unknown, or its record has expired)"
    )


def test_jobs_by_state_and_queue_counts(cli: Run, job_worker: Any) -> None:
    succeeded = [
        ok_json(cli("enqueue", "noop", "--json", f'{{"value": {n}}}', "--wait", "-o", "json"))["job_id"]
        for n in range(2)
    ]
    failed = cli("enqueue", "fail", "--json", '{"permanent": true}', "--wait", "-o", "json")
    assert failed.returncode == ExitCode.JOB_FAILED
    failed_id = json.loads(failed.stdout)["job_id"]
    scheduled = ok_json(cli("enqueue", "noop", "--delay", "600", "-o", "json"))["job_id"]

    page = ok_json(cli("jobs", "--state", "failed", "--limit", "20", "--json"))
    assert [item["job_id"] for item in page["items"]] == [failed_id]
    assert page["items"][0]["error"] == {"type": "PermanentError", "message": "refused for good"}
    assert page["next_cursor"] is None
    page = ok_json(cli("jobs", "--state", "succeeded", "--json"))
    assert sorted(item["job_id"] for item in page["items"]) == sorted(succeeded)
    page = ok_json(cli("jobs", "--task", "noop", "--json"))
    assert [item["job_id"] for item in page["items"]] == [scheduled, *reversed(succeeded)]

    table = cli("jobs", "--state", "failed")
    assert table.returncode == 0
    header, _, row = table.stdout.splitlines()
    assert header.split()[:5] == ["JOB", "ID", "TASK", "QUEUE", "STATUS"]
    assert row.split()[:5] == [failed_id, "fail", "default", "failed", "1/2"]
    assert row.rstrip().endswith("PermanentError: refused for good")

    queues = {q["name"]: q for q in ok_json(cli("queues", "--json"))}
    assert list(queues) == ["high", "default", "low", "lifecycle"]  # the configured queues, in order
    default = queues["default"]
    assert default == {
        "name": "default",
        "pending": 0,
        "scheduled": 1,
        "running": 0,
        "retrying": 0,
        "succeeded": 2,
        "failed": 1,
        "cancelled": 0,
        "dead_lettered": 1,
        "oldest_pending_age_s": None,
        "workers": 1,
    }
    assert queues["lifecycle"]["workers"] == 0
    table = cli("queues")
    assert [line.split() for line in table.stdout.splitlines()[2:]] == [
        ["high", "0", "0", "0", "0", "0", "0", "0", "0", "0"],
        ["default", "0", "1", "0", "0", "2", "1", "0", "1", "1"],
        ["low", "0", "0", "0", "0", "0", "0", "0", "0", "0"],
        ["lifecycle", "0", "0", "0", "0", "0", "0", "0", "0", "0"],
    ]


def test_workers_lists_the_running_worker(cli: Run, job_worker: tuple[Service, str]) -> None:
    service, worker_id = job_worker
    workers = ok_json(cli("workers", "--json"))
    assert len(workers) == 1
    info = workers[0]
    assert {k: info[k] for k in ("worker_id", "state", "pid", "queues", "concurrency", "running")} == {
        "worker_id": worker_id,
        "state": "alive",
        "pid": service.process.pid,
        "queues": ["default"],
        "concurrency": 100,
        "running": 0,
    }
    table = cli("workers")
    row = table.stdout.splitlines()[2].split()
    assert [row[0], row[1], row[3], row[4], row[5]] == [
        worker_id,
        "alive",
        str(service.process.pid),
        "default",
        "0/100",
    ]

    service.stop()
    stopped = ok_json(cli("workers", "--json"))
    assert [(w["worker_id"], w["state"]) for w in stopped] == [(worker_id, "stopped")]


def dead_ids(cli: Run, *args: str) -> list[str]:
    return [item["job_id"] for item in ok_json(cli("dead", "list", *args, "--json"))["items"]]


def failed_job(cli: Run) -> str:
    failed = cli("enqueue", "fail", "--json", '{"permanent": true}', "--wait", "-o", "json")
    assert failed.returncode == ExitCode.JOB_FAILED
    job_id: str = json.loads(failed.stdout)["job_id"]
    return job_id


def test_dead_letters_list_show_retry_and_delete(cli: Run, job_worker: tuple[Service, str]) -> None:
    _, worker_id = job_worker
    assert cli("dead", "list").stdout == "no dead letters\n"
    ids = [failed_job(cli) for _ in range(3)]
    assert dead_ids(cli) == ids[::-1]  # newest first
    first = ok_json(cli("dead", "list", "--limit", "2", "--json"))
    assert [item["job_id"] for item in first["items"]] == ids[:0:-1]
    assert dead_ids(cli, "--cursor", first["next_cursor"]) == ids[:1]
    assert dead_ids(cli, "--task", "noop") == []

    shown = ok_json(cli("dead", "show", ids[0], "--json"))
    traceback = shown["error"].pop("traceback")
    assert "PermanentError: refused for good" in traceback
    assert {k: shown[k] for k in ("job_id", "task", "queue", "input", "error", "reason", "attempts")} == {
        "job_id": ids[0],
        "task": "fail",
        "queue": "default",
        "input": {"permanent": True, "retry_after_s": 120.0},
        "error": {"type": "PermanentError", "message": "refused for good"},
        "reason": "permanent_error",
        "attempts": 1,
    }
    assert (shown["max_attempts"], shown["worker"], shown["retry_of"]) == (2, worker_id, None)
    table = cli("dead", "show", ids[0])
    assert "traceback:" in table.stdout.splitlines()
    one_error(
        cli("dead", "show", "nope"),
        ExitCode.NOT_FOUND,
        "no dead letter for job id 'nope' (unknown, deleted, retried or expired)",
    )

    retried = ok_json(cli("dead", "retry", ids[0], "--json"))
    assert (retried["task"], retried["status"], retried["retry_of"]) == ("fail", "pending", ids[0])

    def failed_again() -> bool:
        return bool(ok_json(cli("status", retried["job_id"], "--json"))["is_terminal"])

    eventually(failed_again, 20, "the retried job failing again")
    assert dead_ids(cli) == [retried["job_id"], ids[2], ids[1]]
    again = ok_json(cli("dead", "show", retried["job_id"], "--json"))
    assert again["retry_of"] == ids[0]

    deleted = cli("dead", "delete", ids[1])
    assert (deleted.returncode, deleted.stdout) == (0, f"deleted dead letter {ids[1]}\n")
    one_error(
        cli("dead", "delete", ids[1]),
        ExitCode.NOT_FOUND,
        f"no dead letter for job id {ids[1]!r} (unknown, deleted, retried or expired)",
    )

    assert dead_ids(cli) == [retried["job_id"], ids[2]]


def test_dead_letters_retry_and_delete_all(cli: Run, job_worker: Any) -> None:
    ids = [failed_job(cli) for _ in range(2)]
    declined = cli("dead", "delete", "--all", input="n\n")
    assert (declined.returncode, declined.stdout) == (ExitCode.JOB_FAILED, "")
    assert declined.stderr == "Delete all 2 dead letters? [y/N]: error: nothing done: delete not confirmed\n"
    unanswered = cli("dead", "retry", "--all")  # no terminal, no answer: nothing is done
    assert unanswered.returncode == ExitCode.JOB_FAILED
    assert dead_ids(cli) == ids[::-1]

    everything = ok_json(cli("dead", "retry", "--all", "--task", "fail", "--yes", "--json"))
    assert [job["retry_of"] for job in everything["retried"]] == ids[::-1]
    assert everything["failed"] == []
    new_ids = [job["job_id"] for job in everything["retried"]]
    eventually(lambda: sorted(dead_ids(cli)) == sorted(new_ids), 20, "both retried jobs dead again")

    removed = ok_json(cli("dead", "delete", "--all", "--json", input="y\n"))
    assert sorted(removed["deleted"]) == sorted(new_ids) and removed["failed"] == []
    assert dead_ids(cli) == []
    nothing = cli("dead", "delete", "--all", "--yes")
    assert (nothing.returncode, nothing.stderr) == (0, "no dead letters\n")


def test_mistakes_give_one_line_errors_and_their_exit_codes(cli: Run) -> None:
    one_error(
        cli("enqueue", "nope", "--json", "{}"),
        ExitCode.NOT_FOUND,
        f"no task named 'nope' is registered (known: {KNOWN_TASKS})",
    )
    one_error(
        cli("enqueue", "generate_report", "--json", '{"rows": "lots"}'),
        ExitCode.INVALID_INPUT,
        "invalid input for task 'generate_report': rows: Input should be a valid integer, unable to parse string as an integer",
    )
    one_error(
        cli("enqueue", "generate_report", "--json", '{"rows": 0}'),
        ExitCode.INVALID_INPUT,
        "invalid input for task 'generate_report': rows: Input should be greater than or equal to 1",
    )
    one_error(
        cli("enqueue", "noop", "--json", "{value: 1}"),
        ExitCode.INVALID_INPUT,
        "--json is not valid JSON: Expecting property name enclosed in double quotes at line 1 column 2",
    )
    one_error(
        cli("enqueue", "noop", "--json", "not json"),
        ExitCode.INVALID_INPUT,
        "--json is not valid JSON: Expecting value at line 1 column 1",
    )
    unreachable = cli("queues", JOBS_REDIS_URL="redis://:hunter2@127.0.0.1:1/0")
    assert (unreachable.returncode, unreachable.stdout) == (ExitCode.REDIS_UNAVAILABLE, "")
    assert unreachable.stderr.startswith("error: Redis at redis://:***@127.0.0.1:1/0 is unreachable: ")
    assert unreachable.stderr.count("\n") == 1 and "hunter2" not in unreachable.stderr
    one_error(
        cli("workers", JOBS_QUEUE_NAME="no spaces allowed"),
        ExitCode.SETTINGS,
        "invalid settings: JOBS_QUEUE_NAME: String should match pattern '^[A-Za-z0-9_.-]+$'",
    )
    usage = cli("jobs", "--state", "nonsense")
    assert usage.returncode == ExitCode.USAGE and "Traceback" not in usage.stderr
    assert "'nonsense' is not one of" in usage.stderr
    # nothing was enqueued by any of these
    assert ok_json(cli("jobs", "--json")) == {"items": [], "next_cursor": None}


def test_workflow_start_wait_show_and_cancel(cli: Run, job_worker: Any) -> None:
    spec = {"type": "chain", "steps": [{"task": "wf_add", "input": {"a": 2, "b": 3}}, {"task": "wf_double"}]}
    done = cli("workflow", "start", "--json", json.dumps(spec), "--wait", "-o", "json")
    body = ok_json(done)
    workflow_id = body["workflow_id"]
    assert (body["type"], body["status"], body["result"], body["error"]) == (
        "chain",
        "succeeded",
        {"n": 10},
        None,
    )
    assert [(s["path"], s["task"], s["status"], s["result"]) for s in body["steps"]] == [
        ("steps[0]", "wf_add", "succeeded", {"n": 5}),
        ("steps[1]", "wf_double", "succeeded", {"n": 10}),
    ]
    lines = done.stderr.splitlines()
    assert (
        lines[0]
        == f"workflow {workflow_id} started; waiting for it to end (Ctrl-C stops waiting, not the workflow)"
    )
    assert lines[-1] == "succeeded 2/2 steps succeeded"
    assert ok_json(cli("workflow", "show", workflow_id, "--json")) == body
    step = ok_json(cli("status", body["steps"][1]["job_id"], "--json"))
    assert (step["task"], step["status"], step["workflow_id"]) == ("wf_double", "succeeded", workflow_id)

    slow = {
        "type": "chain",
        "steps": [{"task": "wf_double", "input": {"n": 1, "delay_s": 30}}, {"task": "wf_square"}],
    }
    started = ok_json(cli("workflow", "start", "--json", json.dumps(slow), "-o", "json"))
    slow_id, first_job = started["workflow_id"], started["steps"][0]["job_id"]
    eventually(
        lambda: ok_json(cli("status", first_job, "--json"))["status"] == "running",
        20,
        "the first step running",
    )
    table = cli("workflow", "show", slow_id)
    assert table.returncode == 0
    assert [line.split()[:4] for line in table.stdout.splitlines()[-2:]] == [
        ["steps[0]", "wf_double", first_job, "running"],
        ["steps[1]", "wf_square", started["steps"][1]["job_id"], "pending"],
    ]
    cancelled = cli("workflow", "cancel", slow_id)
    assert (cancelled.returncode, cancelled.stderr) == (0, "")
    assert cancelled.stdout.splitlines()[0] == f"workflow {slow_id} cancelled"

    def all_cancelled() -> bool:
        shown = ok_json(cli("workflow", "show", slow_id, "--json"))
        return shown["status"] == "cancelled" and [s["status"] for s in shown["steps"]] == ["cancelled"] * 2

    eventually(all_cancelled, 10, "the running step stopped and the workflow cancelled")
    one_error(
        cli("workflow", "cancel", slow_id),
        ExitCode.CONFLICT,
        f"workflow {slow_id} has already ended (cancelled); only unfinished workflows can be cancelled",
    )
    one_error(
        cli("workflow", "show", "nope"),
        ExitCode.NOT_FOUND,
        "no workflow with id 'nope' (unknown, or it has expired)",
    )
    one_error(
        cli(
            "workflow",
            "start",
            "--json",
            json.dumps({"type": "group", "steps": [{"task": "wf_add", "input": {"a": 1}}]}),
        ),
        ExitCode.INVALID_INPUT,
        "invalid workflow: steps[0] (wf_add): invalid input for task 'wf_add': b: Field required",
    )


def test_stats_of_the_jobs_a_worker_ran(cli: Run, job_worker: Any) -> None:
    for n in range(2):
        ok_json(cli("enqueue", "noop", "--json", f'{{"value": {n}}}', "--wait", "-o", "json"))
    assert cli("enqueue", "fail", "--json", '{"permanent": true}', "--wait").returncode == ExitCode.JOB_FAILED

    stats = ok_json(cli("stats", "--task", "noop", "--json"))
    assert (stats["window"], stats["resolution_s"], stats["task"], stats["queue"]) == (
        "24h",
        3600,
        "noop",
        None,
    )
    assert len(stats["series"]) == 24 and sum(point["succeeded"] for point in stats["series"]) == 2
    [row] = stats["tasks"]
    timings = {name: row.pop(name) for name in list(row) if name.endswith("_ms")}
    assert row == {
        "task": "noop",
        "count": 2,
        "failure_rate": 0.0,
        "succeeded": 2,
        "failed": 0,
        "retried": 0,
        "cancelled": 0,
        "dead_lettered": 0,
    }
    assert all(ms is not None and ms <= 10_000 for ms in timings.values()), timings

    table = cli("stats", "--queue", "default")
    assert (table.returncode, table.stderr) == (0, "")
    lines = table.stdout.splitlines()
    assert lines[0] == "jobs that ended in the last 24h (queue default), by task"
    assert [line.split()[:3] for line in lines[3:]] == [["noop", "2", "0"], ["fail", "1", "100"]]
    empty = cli("stats", "--window", "15m", "--task", "wf_add")
    assert (empty.returncode, empty.stdout) == (0, "no jobs ended in the last 15m (task wf_add)\n")
