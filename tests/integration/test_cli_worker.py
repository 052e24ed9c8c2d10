"""`arq-jobs worker --queue lifecycle --processes 2` as an operator runs it: two real `python -m arq`
workers of the lifecycle pool that register and run jobs, a SIGTERM passed on to both (each stops
cleanly, the command exits 0), and a SIGKILLed process started again. Each test has its own key
prefix, so the worker registry holds exactly its workers."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import psutil
import pytest

from arq_jobs import JobClient, JobState, Settings
from arq_jobs._worker_registry import WorkerInfo
from tests.integration.tasks.probes import HoldInput, hold

from .conftest import QUEUES, TASK_PACKAGES, Service, delete_prefix, service_env

T = TypeVar("T")

COMMAND = [sys.executable, "-m", "arq_jobs", "worker", "--queue", "lifecycle", "--processes", "2"]
POOL = [sys.executable, "-m", "arq", "workers.LifecycleWorkerSettings"]
HEARTBEAT_S = 0.5  # workers and this test's client agree: dead after 3 missed beats, 1.5 s


@pytest.fixture
def prefix(redis_url: str, key_prefix: str) -> Iterator[str]:
    name = f"{key_prefix}-procs-{uuid.uuid4().hex[:8]}"
    yield name
    delete_prefix(redis_url, name)


@pytest.fixture
async def jobs(redis_url: str, prefix: str) -> AsyncIterator[JobClient]:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, redis_url=redis_url, key_prefix=prefix, queues=QUEUES, heartbeat_s=HEARTBEAT_S
    )
    async with JobClient.connect(settings, task_packages=TASK_PACKAGES.split(",")) as client:
        yield client


@pytest.fixture
def supervisor(redis_url: str, prefix: str, tmp_path: Path) -> Iterator[Service]:
    """The command, one job at a time per process (so that two jobs need both processes)."""
    env = service_env(
        redis_url, prefix, JOBS_HEARTBEAT_S=str(HEARTBEAT_S), JOBS_QUEUE_CONCURRENCY="lifecycle=1"
    )
    service = Service("arq-jobs worker", COMMAND, env, tmp_path / "supervisor.log").start()
    seen: set[int] = set()
    try:
        yield service
    finally:
        if service.process.poll() is None:
            seen.update(child.pid for child in psutil.Process(service.process.pid).children())
        service.stop()
        for pid in seen:  # in sessions of their own: a failed test must not leave one running
            if psutil.pid_exists(pid):
                psutil.Process(pid).kill()


def children(service: Service) -> dict[int, list[str]]:
    """The supervisor's child processes: pid → command line."""
    return {child.pid: child.cmdline() for child in psutil.Process(service.process.pid).children()}


async def eventually(check: Callable[[], Awaitable[T | None]], timeout_s: float, what: str) -> T:
    deadline = time.monotonic() + timeout_s
    while True:
        found = await check()
        if found:
            return found
        assert time.monotonic() < deadline, f"not within {timeout_s}s: {what}"
        await asyncio.sleep(0.05)


async def live(jobs: JobClient, count: int, timeout_s: float = 15) -> dict[int, WorkerInfo]:
    """Once exactly `count` workers are alive: pid → worker."""

    async def check() -> dict[int, WorkerInfo] | None:
        alive = {w.pid: w for w in await jobs.workers() if w.state == "alive"}
        return alive if len(alive) == count else None

    return await eventually(check, timeout_s, f"{count} live workers")


async def test_two_processes_of_the_queues_pool_register_and_share_its_jobs(
    supervisor: Service, jobs: JobClient
) -> None:
    alive = await live(jobs, 2)
    assert children(supervisor) == dict.fromkeys(alive, POOL)
    assert [(w.queues, w.concurrency) for w in alive.values()] == [(["lifecycle"], 1)] * 2

    first = await jobs.enqueue(hold, HoldInput(seconds=1))
    second = await jobs.enqueue(hold, HoldInput(seconds=1))

    async def ended() -> list[dict[str, object]] | None:
        found = [await jobs.status(job.job_id) for job in (first, second)]
        return [s.result for s in found] if all(s.status is JobState.SUCCEEDED for s in found) else None

    results = await eventually(ended, 15, "both jobs succeeded")
    # one job at a time each: the second job ran on the other process, at the same time
    assert sorted(str(r["worker"]) for r in results) == sorted(w.worker_id for w in alive.values())


async def test_sigterm_stops_every_process_cleanly_and_the_command_exits_0(
    supervisor: Service, jobs: JobClient
) -> None:
    alive = await live(jobs, 2)
    supervisor.process.send_signal(signal.SIGTERM)
    assert supervisor.process.wait(timeout=15) == 0
    assert not any(psutil.pid_exists(pid) for pid in alive)
    states = {w.worker_id: w.state for w in await jobs.workers()}
    assert states == {w.worker_id: "stopped" for w in alive.values()}
    log = supervisor.log()
    assert "SIGTERM: stopping 2 worker processes (SIGTERM; running jobs may finish, at most 7s)" in log
    assert "worker processes stopped" in log and "not all cleanly" not in log


async def test_a_killed_process_is_started_again(supervisor: Service, jobs: JobClient) -> None:
    alive = await live(jobs, 2)
    killed, survivor = sorted(alive)
    psutil.Process(killed).kill()

    async def replaced() -> dict[int, WorkerInfo] | None:
        now = {w.pid: w for w in await jobs.workers() if w.state == "alive"}
        return now if len(now) == 2 and killed not in now else None

    after = await eventually(replaced, 15, "a new live worker instead of the killed one")
    [new] = set(after) - {survivor}
    assert after[survivor].worker_id == alive[survivor].worker_id
    assert children(supervisor) == {survivor: POOL, new: POOL}
    states = {w.worker_id: w.state for w in await jobs.workers()}
    assert states[alive[killed].worker_id] == "stale"  # it died without saying so
    log = supervisor.log()
    number = "1" if f"worker process 1 started (pid {killed})" in log else "2"
    assert f"worker process {number} (pid {killed}) was killed by SIGKILL; restarting in 1s" in log
    assert f"worker process {number} restarted (pid {new})" in log
