"""`arq-jobs stats` on fakeredis: statistics hashes written as the ending scripts write them
(`includes/stats.lua`), read back through the command as a table per task or as JSON."""

from __future__ import annotations

import json
from typing import Any

from arq_jobs._cli.errors import ExitCode
from arq_jobs._client import JobClient
from arq_jobs._clock import now_ms
from arq_jobs._stats.window import HOUR, JOBS_SCOPE, MINUTE, Unit, Window

from .conftest import Invoke


def assert_error(result: Any, code: ExitCode, line: str) -> None:
    assert (result.exit_code, result.stderr, result.stdout) == (code, f"error: {line}\n", "")


async def write_stats(
    job_client: JobClient,
    queue: str,
    task: str,
    fields: dict[str, int],
    units: tuple[Unit, ...] = (MINUTE, HOUR),
) -> None:
    """Add `fields` (`succeeded`, `run:250`, ...) to the task's hashes on `queue` of the minute and
    the hour now running, and note the pair in the scopes set, as the scripts do."""
    keys = job_client.keys
    now = now_ms()
    for unit in units:
        start_s = now // 1000 - now // 1000 % unit.seconds
        key = keys.stats(unit.name, start_s, f"{JOBS_SCOPE}{queue}:{task}")
        for name, value in fields.items():
            await job_client.redis.hincrby(key, name, value)
    await job_client.redis.zadd(keys.stats_scopes(), {f"{queue}:{task}": now})


async def test_stats_prints_a_row_per_task_busiest_first(invoke: Invoke, job_client: JobClient) -> None:
    await write_stats(
        job_client,
        "default",
        "noop",
        {
            "succeeded": 2,
            "failed": 1,
            "retried": 2,
            "run:5": 3,
            "run:250": 1,
            "run:2500": 1,
            "wait:1": 4,
            "wait:30000": 1,
        },
    )
    await write_stats(
        job_client,
        "low",
        "generate_report",
        {"succeeded": 1, "cancelled": 1, "run:120000": 1, "wait:10": 1},
    )
    await write_stats(job_client, "high", "send_webhook", {"cancelled": 1})

    result = await invoke("stats")
    assert (result.exit_code, result.stderr) == (0, "")
    assert [line.rstrip() for line in result.stdout.splitlines()] == [
        "jobs that ended in the last 24h, by task",
        " TASK              JOBS   FAILED %   RUN P50   RUN P95   WAIT P95   RETRIED   CANCELLED",
        "────────────────────────────────────────────────────────────────────────────────────────",
        " noop              3      33.3       5 ms      2.5 s     30 s       2         0",
        " generate_report   1      0          2 min     2 min     10 ms      0         1",
        " send_webhook      0      —          —         —         —          0         1",
    ]


async def test_stats_of_one_task_or_queue_says_so(invoke: Invoke, job_client: JobClient) -> None:
    await write_stats(job_client, "default", "noop", {"succeeded": 4, "run:1000": 4, "wait:2": 4})
    await write_stats(job_client, "high", "noop", {"failed": 1, "run:3600000": 1})
    await write_stats(job_client, "default", "generate_report", {"succeeded": 1, "run:50": 1})

    by_task = await invoke("stats", "--task", "noop")
    assert [line.rstrip() for line in by_task.stdout.splitlines()] == [
        "jobs that ended in the last 24h (task noop), by task",
        " TASK   JOBS   FAILED %   RUN P50   RUN P95   WAIT P95   RETRIED   CANCELLED",
        "─────────────────────────────────────────────────────────────────────────────",
        " noop   5      20         1 s       1 h       2 ms       0         0",
    ]
    both = await invoke("stats", "--task", "noop", "--queue", "high", "--window", "7d")
    assert both.stdout.splitlines()[0] == "jobs that ended in the last 7d (task noop, queue high), by task"
    assert both.stdout.splitlines()[3].split() == ["noop", "1", "100", "1", "h", "1", "h", "—", "0", "0"]
    by_queue = await invoke("stats", "--queue", "default")
    assert [line.split()[:2] for line in by_queue.stdout.splitlines()[3:]] == [
        ["noop", "4"],
        ["generate_report", "1"],
    ]


async def test_stats_of_an_empty_window_says_no_job_ended(invoke: Invoke, job_client: JobClient) -> None:
    empty = await invoke("stats")
    assert (empty.exit_code, empty.stdout, empty.stderr) == (0, "no jobs ended in the last 24h\n", "")
    # kept per hour only: the 15-minute window reads minutes
    await write_stats(job_client, "default", "noop", {"succeeded": 1}, units=(HOUR,))
    short = await invoke("stats", "--window", "15m", "--task", "noop")
    assert (short.exit_code, short.stdout) == (0, "no jobs ended in the last 15m (task noop)\n")
    await write_stats(job_client, "default", "noop", {"succeeded": 1}, units=(MINUTE,))
    assert (await invoke("stats", "-w", "15m")).stdout.splitlines()[3].split()[:2] == ["noop", "1"]


async def test_stats_json_is_the_whole_statistics(invoke: Invoke, job_client: JobClient) -> None:
    await write_stats(job_client, "default", "noop", {"succeeded": 1, "failed": 1, "run:10": 2, "wait:5": 2})
    result = await invoke("stats", "--task", "noop", "--window", "1h", "--json")
    assert result.exit_code == 0, result.stderr
    stats = json.loads(result.stdout)
    assert stats == json.loads((await job_client.stats(Window.HOUR_1, task="noop")).model_dump_json())
    assert (stats["window"], stats["resolution_s"], stats["task"], stats["queue"]) == ("1h", 60, "noop", None)
    assert len(stats["series"]) == 60
    assert stats["tasks"] == [
        {
            "task": "noop",
            "count": 2,
            "failure_rate": 0.5,
            "run_p50_ms": 10,
            "run_p95_ms": 10,
            "wait_p95_ms": 5,
            "succeeded": 1,
            "failed": 1,
            "retried": 0,
            "cancelled": 0,
            "dead_lettered": 0,
            "run_p99_ms": 10,
            "wait_p50_ms": 5,
            "wait_p99_ms": 5,
        }
    ]
    everything = json.loads((await invoke("stats", "-o", "json")).stdout)
    assert (everything["window"], everything["task"], len(everything["series"])) == ("24h", None, 24)


async def test_stats_mistakes_are_one_line_errors(invoke: Invoke) -> None:
    assert_error(
        await invoke("stats", "--task", "nope"),
        ExitCode.NOT_FOUND,
        "no task named 'nope' is registered (known: noop, generate_report, send_webhook)",
    )
    assert_error(
        await invoke("stats", "--queue", "urgent"),
        ExitCode.INVALID_INPUT,
        "no queue named 'urgent' is configured; the queues are high, default, low",
    )
    usage = await invoke("stats", "--window", "2h")
    assert (usage.exit_code, usage.stdout) == (ExitCode.USAGE, "")
    assert "'2h' is not one of '15m', '1h', '24h', '7d', '30d'" in " ".join(
        usage.stderr.replace("│", " ").split()
    )
