"""What every workload needs for one run: a deployment of a system (cleaned up afterwards), its worker
and its HTTP app as child processes (always stopped), waiting for jobs to end, and load generators."""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx

from bench import processes
from bench.own_redis import OwnRedis, own_redis
from bench.processes import Child
from bench.systems import Deployment, SystemName, base_env, open_deployment
from devserver.redis_server import free_port


@dataclass(frozen=True, slots=True)
class Api:
    child: Child
    base_url: str


@dataclass
class Harness:
    redis_url: str
    log_dir: Path
    _names: itertools.count[int] = field(default_factory=itertools.count)
    own: OwnRedis | None = None  # set on the harness `own_redis` hands out

    def name(self, what: str) -> str:
        return f"{next(self._names):03d}-{what}"

    @asynccontextmanager
    async def own_redis(self) -> AsyncIterator[Harness]:
        """This harness on a fresh redis-server of its own (bench/own_redis.py), stopped after."""
        async with own_redis(self.name("redis-server"), self.log_dir) as server:
            yield replace(self, redis_url=server.url, own=server)

    def redis_description(self) -> dict[str, Any]:
        """Which Redis this harness's runs use, for a run's details."""
        return self.own.describe() if self.own is not None else {"redis": "target"}

    @asynccontextmanager
    async def deployment(self, system: SystemName) -> AsyncIterator[Deployment]:
        deployment = await open_deployment(system, self.redis_url)
        try:
            yield deployment
        finally:
            try:
                if self.own is None:  # a Redis of its own is thrown away whole
                    await deployment.cleanup()
            finally:
                await deployment.aclose()

    @asynccontextmanager
    async def worker(
        self, deployment: Deployment, concurrency: int | None = None, *, ready: bool = False
    ) -> AsyncIterator[Child]:
        """The system's worker; with `ready`, once it polls its queue."""
        command = deployment.worker(concurrency)
        child = await processes.start(
            self.name(f"{deployment.system}-worker"), command.argv, command.env, self.log_dir
        )
        try:
            if ready:
                await self.wait_for_key(deployment, deployment.worker_ready_key, child)
            yield child
        finally:
            await child.stop()

    @asynccontextmanager
    async def workers(
        self, deployment: Deployment, count: int, concurrency: int | None = None
    ) -> AsyncIterator[list[Child]]:
        """`count` worker processes of the system, each started as `worker` starts one, all serving
        the same queue; stopped together."""
        async with AsyncExitStack() as stack:
            started = [
                await stack.enter_async_context(self.worker(deployment, concurrency)) for _ in range(count)
            ]
            yield started

    @asynccontextmanager
    async def api(self, deployment: Deployment, processes_wanted: int = 1) -> AsyncIterator[Api]:
        """The system's HTTP app, once it answers its readiness route; `processes_wanted` > 1 asks it
        for that many server processes (ours: JOBS_API_WORKERS)."""
        port = free_port()
        command = deployment.api(port, processes_wanted)
        child = await processes.start(
            self.name(f"{deployment.system}-api"), command.argv, command.env, self.log_dir
        )
        base = f"http://127.0.0.1:{port}"
        try:
            await wait_http(f"{base}{deployment.api_ready_path}", child)
            yield Api(child, base)
        finally:
            await child.stop()

    async def wait_for_key(
        self, deployment: Deployment, key: str, child: Child, timeout_s: float = 30
    ) -> None:
        deadline = time.monotonic() + timeout_s
        while not await deployment.redis.exists(key):
            child.check_alive()
            if time.monotonic() > deadline:
                raise TimeoutError(f"{child.name} did not start within {timeout_s:.0f}s:\n{child.log_tail()}")
            await asyncio.sleep(0.02)

    async def wait_done(
        self,
        deployment: Deployment,
        job_ids: Sequence[str],
        worker: Child | Sequence[Child],
        timeout_s: float,
        poll_s: float | None = None,
    ) -> None:
        """Until every job has ended (its queue is empty and each has a result); fails when a
        worker dies or `timeout_s` passes. Polls only the queue's size until it is empty, every
        `poll_s` (default 20 ms while jobs are queued, 100 ms after; where Redis's CPU is measured
        the harness polls less often, its own commands being counted too)."""
        deadline = time.monotonic() + timeout_s
        workers = [worker] if isinstance(worker, Child) else list(worker)
        while True:
            for each in workers:
                each.check_alive()
            queued = await deployment.queued()
            if queued == 0:
                ended = await deployment.results(job_ids)
                if ended == len(job_ids):
                    return
            if time.monotonic() > deadline:
                ended = await deployment.results(job_ids)
                raise TimeoutError(
                    f"{deployment.system}: {ended}/{len(job_ids)} jobs ended within {timeout_s:.0f}s "
                    f"({queued} still queued)"
                )
            await asyncio.sleep(poll_s if poll_s is not None else 0.02 if queued else 0.1)

    async def loadgen(self, args: Sequence[str]) -> dict[str, Any]:
        """Run `python -m bench.loadgen <args>` to its end; its JSON report."""
        child = await processes.start(
            self.name("loadgen"), processes.python_command("bench.loadgen", *args), base_env(), self.log_dir,
            capture_stdout=True,
        )  # fmt: skip
        try:
            out, _ = await child.process.communicate()
        finally:
            await child.stop()
        return loadgen_report(child, out)

    @asynccontextmanager
    async def poller(self, args: Sequence[str]) -> AsyncIterator[Poller]:
        """A `bench.loadgen poll` running until the block ends (then SIGTERM); its report in
        `Poller.report`."""
        child = await processes.start(
            self.name("poller"), processes.python_command("bench.loadgen", "poll", *args), base_env(),
            self.log_dir, capture_stdout=True,
        )  # fmt: skip
        poller = Poller(child)
        try:
            await poller.wait_ready()
            yield poller
            await poller.finish()
        finally:
            await child.stop()


@dataclass
class Poller:
    child: Child
    report: dict[str, Any] = field(default_factory=dict)

    async def wait_ready(self, timeout_s: float = 20) -> None:
        deadline = time.monotonic() + timeout_s
        while "ready" not in self.child.log_tail():
            self.child.check_alive()
            if time.monotonic() > deadline:
                raise TimeoutError(f"poller not ready after {timeout_s:.0f}s")
            await asyncio.sleep(0.02)

    async def finish(self) -> None:
        self.child.process.terminate()
        out, _ = await asyncio.wait_for(self.child.process.communicate(), 30)
        self.report = loadgen_report(self.child, out)


def loadgen_report(child: Child, out: bytes) -> dict[str, Any]:
    lines = out.decode(errors="replace").strip().splitlines()
    if child.process.returncode != 0 or not lines:
        raise RuntimeError(f"load generator failed ({child.process.returncode}):\n{child.log_tail()}")
    report: dict[str, Any] = json.loads(lines[-1])
    return report


async def wait_http(url: str, child: Child, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(timeout=1) as client:
        while True:
            child.check_alive()
            try:
                if (await client.get(url)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{child.name} not ready at {url} after {timeout_s:.0f}s")
            await asyncio.sleep(0.05)


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
