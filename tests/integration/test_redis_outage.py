"""A worker rides through a Redis outage: a Redis of the test's own (AOF on, in a temp dir, on a free
port) is killed and restarted on its AOF, demoted to a read-only replica, or made to load, while
one real worker runs 300 three-second jobs; the real API answers 503 meanwhile. Run with -s for the
figures."""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from devserver.redis_server import free_port, is_reachable

from .conftest import ARQ, Service, enqueue_job, http_ok, service_env, start_api, start_worker
from .redis_servers import RedisProcess, start_redis

JOBS = 300
TASK_S = 3.0
LEASE_S = 10  # the default JOBS_LEASE_S


@dataclass
class OwnRedis:
    """A redis-server with an append-only file in `directory`, on `port`, that a test kills and restarts."""

    directory: Path
    port: int
    server: RedisProcess | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, *, wait: bool = True) -> OwnRedis:
        """Start it on its data; with `wait`, until it answers (not while it loads its data)."""
        self.server = start_redis(
            self.directory,
            "--appendonly", "yes",
            "--appendfsync", "always",  # a SIGKILL loses nothing Redis acknowledged
            "--enable-debug-command", "yes",  # DEBUG POPULATE: a dataset that takes a while to load
            port=self.port,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while wait and not is_reachable(self.url, timeout_s=0.2):
            assert self.server.process.poll() is None and time.monotonic() < deadline, (
                "redis-server did not start"
            )
            time.sleep(0.02)
        return self

    def kill(self) -> None:
        assert self.server is not None
        self.server.process.send_signal(signal.SIGKILL)
        self.server.process.wait()
        self.server = None


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    server = OwnRedis(tmp_path / "redis", free_port())
    server.directory.mkdir()
    server.start()
    try:
        yield server
    finally:
        if server.server is not None and server.server.process.poll() is None:
            server.kill()


@dataclass
class Deployment:
    redis: OwnRedis
    api: Service
    base: str
    worker: Service
    metrics_url: str


@pytest.fixture
def deployment(own_redis: OwnRedis, tmp_path: Path) -> Iterator[Deployment]:
    prefix = "outage"
    api, base = start_api(service_env(own_redis.url, prefix), tmp_path)
    api.wait_until(http_ok(f"{base}/health/ready"))
    metrics_port = free_port()
    worker, _ = start_worker(
        own_redis.url,
        prefix,
        tmp_path,
        "worker",
        JOBS_QUEUE_NAME="lifecycle",
        JOBS_WORKER_CONCURRENCY=str(JOBS),
        JOBS_WORKER_METRICS_PORT=str(metrics_port),
        JOBS_POLL_DELAY_S="0.1",
    )
    try:
        yield Deployment(own_redis, api, base, worker, f"http://127.0.0.1:{metrics_port}/metrics")
    finally:
        worker.stop()
        api.stop()


async def statuses(http: httpx.AsyncClient, job_ids: list[str]) -> list[dict[str, Any]]:
    async def one(job_id: str) -> dict[str, Any]:
        response = await http.get(f"/jobs/{job_id}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    found: list[dict[str, Any]] = []
    for start in range(0, len(job_ids), 50):
        found += await asyncio.gather(*(one(job_id) for job_id in job_ids[start : start + 50]))
    return found


async def enqueue_jobs(http: httpx.AsyncClient) -> list[str]:
    ids: list[str] = []
    for start in range(0, JOBS, 50):
        accepted = await asyncio.gather(
            *(enqueue_job(http, "hold", {"seconds": TASK_S}) for _ in range(start, min(JOBS, start + 50)))
        )
        ids += [body["job_id"] for body in accepted]
    return ids


async def wait_all(
    http: httpx.AsyncClient, job_ids: list[str], state: str, timeout_s: float
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout_s
    while True:
        found = await statuses(http, job_ids)
        if all(body["status"] == state for body in found):
            return found
        counts: dict[str, int] = {}
        for body in found:
            counts[body["status"]] = counts.get(body["status"], 0) + 1
        assert time.monotonic() < deadline, f"not all {state} after {timeout_s}s: {counts}"
        await asyncio.sleep(0.2)


async def first_finished_after(http: httpx.AsyncClient, job_ids: list[str], back: float) -> float:
    """Seconds from `back` (Redis answering again) until a job shows succeeded."""
    while True:
        for body in await statuses(http, job_ids[:50]):
            if body["status"] == "succeeded":
                return time.monotonic() - back
        assert time.monotonic() - back < 60, "no job finished within 60 s of Redis coming back"


async def listed_live_after(http: httpx.AsyncClient, pid: int, back: float) -> float:
    """Seconds from `back` until GET /workers lists the worker `pid` as live."""
    while True:
        response = await http.get("/workers")
        if response.status_code == 200 and any(
            w["pid"] == pid and w["state"] == "alive" and w["running"] == 0 for w in response.json()
        ):
            return time.monotonic() - back
        assert time.monotonic() - back < 10, (
            f"worker not listed live 10 s after Redis came back: {response.text}"
        )
        await asyncio.sleep(0.05)


def rewritten(client: redis.Redis) -> None:
    """Wait for an AOF rewrite to end."""
    while True:
        info: dict[str, Any] = client.info("persistence")  # type: ignore[assignment]
        if not info["aof_rewrite_in_progress"]:
            return
        time.sleep(0.1)


def metric(url: str, name: str) -> float:
    text = httpx.get(url, timeout=5).text
    match = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    assert match, f"{name} not in /metrics:\n{text}"
    return float(match.group(1))


def outage_lines(worker: Service) -> list[str]:
    return [
        line for line in worker.log().splitlines() if "Redis unavailable" in line or "Redis available" in line
    ]


async def run_outage(deployment: Deployment, outage_s: float, label: str) -> dict[str, Any]:
    """300 jobs running, Redis SIGKILLed, restarted on its AOF after `outage_s`: every job succeeds."""
    async with httpx.AsyncClient(base_url=deployment.base, timeout=10) as http:
        job_ids = await enqueue_jobs(http)
        await wait_all(http, job_ids, "running", timeout_s=TASK_S * 0.8)
        deployment.redis.kill()
        killed = time.monotonic()
        await asyncio.sleep(1.0)
        assert metric(deployment.metrics_url, "redis_up") == 0
        assert metric(deployment.metrics_url, "redis_outage_seconds") > 0.3
        # the API answers 503 and says why; readiness says not ready
        refused = await http.post("/jobs/noop", json={})
        assert refused.status_code == 503 and refused.json()["error"] == "redis_unavailable"
        assert (await http.get("/health/ready")).status_code == 503
        started = time.monotonic()
        check = await asyncio.to_thread(
            subprocess.run,
            [ARQ, "--check", "workers.WorkerSettings"],
            env=deployment.worker.env,
            capture_output=True,
            timeout=60,
        )
        check_s = time.monotonic() - started
        assert check.returncode != 0  # it cannot read its health key: not healthy
        await asyncio.sleep(max(0.0, outage_s - (time.monotonic() - killed)))
        deployment.redis.start()
        back = time.monotonic()
        assert deployment.worker.process.poll() is None, deployment.worker.log()
        listed_s = await listed_live_after(http, deployment.worker.process.pid, back)
        to_first = await first_finished_after(http, job_ids, back)
        finished = await wait_all(http, job_ids, "succeeded", timeout_s=30)
        assert metric(deployment.metrics_url, "redis_up") == 1
        assert metric(deployment.metrics_url, "redis_outage_seconds") == 0
        assert (await http.get("/health/ready")).status_code == 200
        late = await enqueue_job(http, "hold", {"seconds": 0.1})
        late_body = (await wait_all(http, [late["job_id"]], "succeeded", timeout_s=15))[0]
        assert late_body["attempt"] == 1
        assert (await http.post("/jobs/noop", json={})).status_code == 202
        assert deployment.worker.process.poll() is None
    lines = outage_lines(deployment.worker)
    assert len(lines) == 2, lines
    assert "Redis unavailable" in lines[0] and "WARNING" in lines[0].upper()
    assert "Redis available again after" in lines[1]
    reruns = [body for body in finished if body["attempt"] > 1]
    figures = {
        "case": label,
        "accepted": len(job_ids) + 1,
        "succeeded": len(finished) + 1,
        "re-run (attempt > 1)": len(reruns),
        "redis back → first job seen finished (s)": round(to_first, 2),
        "arq --check during outage: exit, seconds": (check.returncode, round(check_s, 1)),
        "redis back → worker live in GET /workers (s)": round(listed_s, 2),
    }
    print(f"\n{figures}\nworker log outage lines: {lines}")
    return {"figures": figures, "reruns": reruns}


async def test_a_worker_rides_through_a_five_second_redis_outage(deployment: Deployment) -> None:
    result = await run_outage(deployment, 5.0, "killed 5 s")
    assert result["figures"]["re-run (attempt > 1)"] == 0  # shorter than the lease: nothing ran twice


async def test_a_worker_rides_through_an_outage_longer_than_the_lease(deployment: Deployment) -> None:
    result = await run_outage(deployment, 20.0, "killed 20 s (lease 10 s)")
    # the jobs ended during the outage; their leases ran out, but the one worker that holds them does
    # not start them again (claims skip jobs it still runs), so nothing runs twice here
    print("re-runs:", [(body["job_id"], body["attempt"]) for body in result["reruns"]])
    assert result["figures"]["re-run (attempt > 1)"] == 0


async def test_read_only_and_loading_redis_lose_nothing(deployment: Deployment) -> None:
    client = redis.Redis.from_url(deployment.redis.url)
    try:
        async with httpx.AsyncClient(base_url=deployment.base, timeout=10) as http:
            job_ids = await enqueue_jobs(http)
            await wait_all(http, job_ids, "running", timeout_s=TASK_S * 0.8)
            # demoted: a replica of a primary that is not there keeps its data and refuses writes
            client.execute_command("REPLICAOF", "127.0.0.1", str(free_port()))  # type: ignore[no-untyped-call]
            await asyncio.sleep(TASK_S + 1)  # the jobs end while Redis refuses their writes
            with pytest.raises(redis.ReadOnlyError):
                client.set("outage:probe", "1")
            client.execute_command("REPLICAOF", "NO", "ONE")  # type: ignore[no-untyped-call]
            finished = await wait_all(http, job_ids, "succeeded", timeout_s=30)
            assert [body["attempt"] for body in finished] == [1] * JOBS
            demoted_lines = outage_lines(deployment.worker)

            # loading: restart on a large dataset; until it is loaded Redis answers LOADING
            client.execute_command("DEBUG", "POPULATE", "1500000", "outage:filler", "64")  # type: ignore[no-untyped-call]
            client.execute_command("BGREWRITEAOF")  # type: ignore[no-untyped-call]
            await asyncio.to_thread(rewritten, client)
            job_ids = await enqueue_jobs(http)
            await wait_all(http, job_ids, "running", timeout_s=TASK_S * 0.8)
            deployment.redis.kill()
            deployment.redis.start(wait=False)
            saw_loading = False
            while not is_reachable(deployment.redis.url, timeout_s=0.2):
                try:
                    redis.Redis.from_url(deployment.redis.url, socket_timeout=0.2).get("x")
                except redis.BusyLoadingError:
                    saw_loading = True
                except (redis.ConnectionError, redis.TimeoutError):
                    pass
                await asyncio.sleep(0.01)
            finished = await wait_all(http, job_ids, "succeeded", timeout_s=40)
            assert [body["attempt"] for body in finished] == [1] * JOBS
            assert deployment.worker.process.poll() is None
        print(
            f"\nread-only then loading: outage lines {outage_lines(deployment.worker)}; saw LOADING: {saw_loading}"
        )
        assert len(demoted_lines) == 2 and "ReadOnlyError" in demoted_lines[0], demoted_lines
        lines = outage_lines(deployment.worker)
        assert len(lines) == 4 and "Redis available again" in lines[3], lines  # restart + loading: one outage
    finally:
        client.close()
