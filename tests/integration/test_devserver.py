"""`make run`'s runner: embedded Redis + API + worker, serving jobs; a killed worker is restarted;
Ctrl-C leaves no process behind."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import Iterator

import httpx
import psutil
import pytest

from devserver.redis_server import free_port

from .conftest import Lines, start_devserver, terminal, wait_for_status


@pytest.fixture
def devserver() -> Iterator[tuple[subprocess.Popen[str], str]]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBS_")}
    env |= {"JOBS_API_PORT": str(port), "JOBS_POLL_DELAY_S": "0.02"}
    process = start_devserver(env, "--embedded-redis")
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
    lines = Lines(process)
    lines.until("API docs at", timeout_s=60)
    output = "".join(lines.seen)
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


async def test_restarts_a_killed_worker_and_still_stops_cleanly(
    devserver: tuple[subprocess.Popen[str], str],
) -> None:
    process, base = devserver
    lines = Lines(process)
    lines.until("API docs at", timeout_s=60)

    def workers_of(pool: str) -> list[psutil.Process]:
        children = psutil.Process(process.pid).children(recursive=True)
        return [c for c in children if f"workers.{pool}" in c.cmdline()]

    [killed] = workers_of("WorkerSettings")
    killed.send_signal(signal.SIGKILL)
    lines.until(r"^devserver: worker of queue default was killed by SIGKILL; restarting in 1s$", timeout_s=10)
    restarted = int(lines.until(r"^devserver: worker of queue default restarted \(pid (\d+)\)$", 10)[1])
    [worker] = workers_of("WorkerSettings")
    assert worker.pid == restarted != killed.pid
    assert len(psutil.Process(process.pid).children(recursive=True)) == 5

    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        deadline = time.monotonic() + 20
        while not any(
            (w["pid"], w["state"], w["queues"]) == (restarted, "alive", ["default"])
            for w in (await http.get("/workers")).json()
        ):
            assert time.monotonic() < deadline, (await http.get("/workers")).json()
            await asyncio.sleep(0.2)
        noop = await http.post("/jobs/noop", json={"value": 3})
        assert noop.status_code == 202
        done = await wait_for_status(http, noop.json()["status_url"], terminal)
        assert (done["status"], done["queue"]) == ("succeeded", "default")

    children = psutil.Process(process.pid).children(recursive=True)
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=30) == 0
    lines.until(r"^devserver: SIGINT: stopping", timeout_s=5)
    gone, alive = psutil.wait_procs(children, timeout=5)
    assert alive == [], [c.pid for c in alive]
    assert not killed.is_running()
