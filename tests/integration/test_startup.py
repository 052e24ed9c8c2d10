"""A bad setting stops the API and the worker at start-up with one line naming the variable."""

from __future__ import annotations

import subprocess
import sys

import pytest

from .conftest import ARQ, ROOT, service_env


@pytest.mark.parametrize(
    ("command", "variable", "value", "expected"),
    [
        (
            [sys.executable, "-m", "app"],
            "JOBS_API_PORT",
            "eighty",
            "invalid settings: JOBS_API_PORT: Input should be a valid integer",
        ),
        (
            [ARQ, "workers.WorkerSettings"],
            "JOBS_WORKER_CONCURRENCY",
            "-4",
            "invalid settings: JOBS_WORKER_CONCURRENCY: Input should be greater than 0",
        ),
        (
            [ARQ, "workers.WorkerSettings"],
            "JOBS_POLL_DELAY_S",
            "fast",
            "invalid settings: JOBS_POLL_DELAY_S: Input should be a valid number",
        ),
        (
            [ARQ, "workers.HighWorkerSettings"],
            "JOBS_QUEUE_CONCURRENCY",
            "urgent=5",
            "invalid settings: JOBS_QUEUE_CONCURRENCY: 'urgent' is not one of JOBS_QUEUES (high, default, low, lifecycle)",
        ),
        (
            [sys.executable, "-m", "app"],
            "JOBS_QUEUE_NAME",
            "reports",
            "invalid settings: JOBS_QUEUE_NAME: 'reports' is not one of JOBS_QUEUES (high, default, low, lifecycle)",
        ),
        # tasks of the test packages declare the queue `lifecycle`: the first found (edge_probes.py) is named
        (
            [sys.executable, "-m", "app"],
            "JOBS_QUEUES",
            "high,default,low",
            "invalid settings: task 'edge_capped' has queue 'lifecycle', which is not one of JOBS_QUEUES (high, default, low)",
        ),
        (
            [ARQ, "workers.WorkerSettings"],
            "JOBS_QUEUES",
            "high,default,low",
            "invalid settings: task 'edge_capped' has queue 'lifecycle', which is not one of JOBS_QUEUES (high, default, low)",
        ),
    ],
)
def test_bad_setting_stops_start_up_with_one_line(
    redis_url: str, command: list[str], variable: str, value: str, expected: str
) -> None:
    env = service_env(redis_url, "it-badconfig", **{variable: value})
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, timeout=60)
    assert done.returncode == 1
    lines = done.stderr.decode().strip().splitlines()
    assert len(lines) == 1, done.stderr.decode()
    assert lines[0].startswith(expected)
