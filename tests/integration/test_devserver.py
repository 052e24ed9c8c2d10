"""`make run`'s runner: embedded Redis + API + worker, serving jobs; Ctrl-C leaves no process behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import psutil
import pytest

from devserver.redis_server import free_port

from .conftest import ROOT, terminal, wait_for_status


@pytest.fixture
def devserver() -> Iterator[tuple[subprocess.Popen[str], str]]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBS_")}
    env |= {"JOBS_API_PORT": str(port), "JOBS_POLL_DELAY_S": "0.02"}
    process = subprocess.Popen(
        [sys.executable, "-m", "devserver", "--embedded-redis"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        yield process, f"http://127.0.0.1:{port}"
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


async def test_serves_jobs_on_embedded_redis_and_stops_cleanly(
    devserver: tuple[subprocess.Popen[str], str],
) -> None:
    process, base = devserver
    assert process.stdout is not None
    lines = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        assert line, "devserver exited early:\n" + "".join(lines)
        lines.append(line)
        if "API docs at" in line:
            break
    output = "".join(lines)
    assert "devserver: Redis: embedded redis-server on redis://127.0.0.1:" in output
    assert f"devserver: API docs at {base}/docs" in output

    children = psutil.Process(process.pid).children(recursive=True)
    names = sorted(" ".join(c.cmdline()[:3]) for c in children)
    assert len(children) == 5, names  # redis-server, the API, a worker per queue (high, default, low)
    for pool in ("workers.HighWorkerSettings", "workers.WorkerSettings", "workers.LowWorkerSettings"):
        assert f"arq {pool}" in output

    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        noop = await http.post("/jobs/noop", json={"value": 1})
        report = await http.post("/jobs/generate_report", json={"rows": 1000, "step_delay_s": 0.1})
        high = await http.post("/jobs/noop?queue=high", json={"value": 2})
        assert (noop.status_code, report.status_code, high.status_code) == (202, 202, 202)
        assert (await wait_for_status(http, noop.json()["status_url"], terminal))["status"] == "succeeded"
        done = await wait_for_status(http, high.json()["status_url"], terminal)
        assert (done["status"], done["queue"]) == ("succeeded", "high")
        assert (await wait_for_status(http, report.json()["status_url"], terminal))["status"] == "succeeded"

    process.send_signal(signal.SIGINT)  # what Ctrl-C sends to the foreground process
    assert process.wait(timeout=30) == 0
    gone, alive = psutil.wait_procs(children, timeout=5)
    assert alive == [], [c.pid for c in alive]
