"""Integration fixtures: a real Redis, the real app under uvicorn (`python -m app`), a real worker
(`arq workers.WorkerSettings`) and a local HTTP server as webhook target.

Redis: `JOBS_REDIS_URL` when set, else 127.0.0.1:6379 (database 9) when it answers, else an embedded
redis-server. Everything the tests write is under a per-session key prefix and is deleted afterwards.
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any

import httpx
import pytest
import redis

from arq_jobs._keys import Keys
from devserver.redis_server import EmbeddedRedis, free_port, is_reachable

ROOT = Path(__file__).resolve().parents[2]
ARQ = str(Path(sys.executable).with_name("arq"))
LOCAL_TEST_REDIS = "redis://127.0.0.1:6379/9"
TASK_PACKAGES = "workers.tasks,tests.integration.tasks"
# the shipped queues plus the one the probes' `hold` task uses (served only by workers a test starts)
QUEUES = "high,default,low,lifecycle"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    configured = os.environ.get("JOBS_REDIS_URL")
    if configured:
        yield configured
    elif is_reachable(LOCAL_TEST_REDIS):
        yield LOCAL_TEST_REDIS
    else:
        with EmbeddedRedis() as embedded:
            yield embedded.url


def delete_prefix(url: str, prefix: str) -> None:
    """Delete our keys under `prefix` and ARQ's keys of the jobs they name."""
    client = redis.Redis.from_url(url)
    try:
        for key in client.scan_iter(match=f"{prefix}:*", count=500):
            name = key.decode()
            if name.startswith(f"{prefix}:job:"):
                job_id = name.rsplit(":", 1)[1]
                client.delete(
                    Keys.arq_job(job_id),
                    Keys.arq_result(job_id),
                    Keys.arq_retry(job_id),
                    Keys.arq_in_progress(job_id),
                )
            client.delete(key)
    finally:
        client.close()


@pytest.fixture(scope="session")
def key_prefix(redis_url: str) -> Iterator[str]:
    prefix = f"it-{uuid.uuid4().hex[:10]}"
    yield prefix
    delete_prefix(redis_url, prefix)


@pytest.fixture(scope="session")
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def service_env(redis_url: str, prefix: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBS_")}
    return {
        **env,
        "JOBS_REDIS_URL": redis_url,
        "JOBS_KEY_PREFIX": prefix,
        "JOBS_POLL_DELAY_S": "0.02",
        "JOBS_HEALTH_CHECK_INTERVAL_S": "1",
        "JOBS_SHUTDOWN_GRACE_S": "2",
        "JOBS_TASK_PACKAGES": TASK_PACKAGES,
        "JOBS_QUEUES": QUEUES,
        # tests.integration.tasks.scheduled's once-a-second schedule: only test_schedules turns it on
        "JOBS_DISABLED_SCHEDULES": "every_second",
        # the tests of authentication turn it on; webhook tests post to their own local target
        "JOBS_AUTH": "off",
        "JOBS_WEBHOOK_ALLOWED_HOSTS": "127.0.0.1",
        **extra,
    }


@dataclass
class Service:
    """A child process with its output in a log file."""

    name: str
    command: list[str]
    env: dict[str, str]
    log_path: Path
    cwd: Path = ROOT
    process: subprocess.Popen[bytes] = field(init=False)

    def start(self) -> Service:
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            self.command,
            cwd=self.cwd,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout_s: float = 15) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._log.close()
        return self.process.returncode

    def wait_until(self, ready: Callable[[], bool], timeout_s: float = 30) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.log()}")
            if ready():
                return
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} not ready after {timeout_s}s:\n{self.log()}")


def http_ok(url: str) -> Callable[[], bool]:
    def check() -> bool:
        try:
            return httpx.get(url, timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    return check


def start_api(env: dict[str, str], log_dir: Path, name: str = "api") -> tuple[Service, str]:
    port = free_port()
    service = Service(
        name, [sys.executable, "-m", "app"], {**env, "JOBS_API_PORT": str(port)}, log_dir / f"{name}.log"
    )
    return service.start(), f"http://127.0.0.1:{port}"


@pytest.fixture(scope="session")
def api(redis_url: str, key_prefix: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    service, base = start_api(service_env(redis_url, key_prefix), tmp_path_factory.mktemp("api"))
    try:
        service.wait_until(http_ok(f"{base}/health/ready"))
        yield base
    finally:
        service.stop()


@pytest.fixture(scope="session")
def worker(
    redis_url: str, key_prefix: str, redis_client: redis.Redis, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    env = service_env(redis_url, key_prefix)
    service = Service(
        "worker", [ARQ, "workers.WorkerSettings"], env, tmp_path_factory.mktemp("worker") / "worker.log"
    )
    service.start()
    try:
        key = f"{key_prefix}:queue:default:health-check:{socket.gethostname()}"
        service.wait_until(lambda: bool(redis_client.exists(key)))
        yield service
    finally:
        service.stop()


def start_worker(
    redis_url: str,
    key_prefix: str,
    log_dir: Path,
    name: str,
    settings_class: str = "workers.WorkerSettings",
    **extra_env: str,
) -> tuple[Service, str]:
    """Another `arq workers.WorkerSettings` process (or another pool's `settings_class`, e.g.
    `workers.HighWorkerSettings`); returns it and its worker id once started."""
    service = Service(
        name,
        [ARQ, settings_class],
        service_env(redis_url, key_prefix, **extra_env),
        log_dir / f"{name}.log",
    ).start()
    found: list[str] = []

    def started() -> bool:
        match = re.search(r"worker (\S+) started", service.log())
        if match:
            found.append(match.group(1))
        return bool(found)

    service.wait_until(started)
    return service, found[0]


def start_devserver(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    """`python -m devserver` (what `make run` runs), its output on a pipe, in a session of its own."""
    return subprocess.Popen(
        [sys.executable, "-m", "devserver", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


class Lines:
    """The devserver's output, read on a thread so that every wait is bounded."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        self.seen: list[str] = []
        self._queue: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, args=(process.stdout,), daemon=True).start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self._queue.put(line)
        self._queue.put("")

    def until(self, pattern: str, timeout_s: float) -> re.Match[str]:
        """The first line from now on that matches `pattern`; fails after `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                line = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no line matching {pattern!r}:\n" + "".join(self.seen)) from None
            assert line, "devserver exited early:\n" + "".join(self.seen)
            self.seen.append(line)
            if found := re.search(pattern, line):
                return found

    def rest(self, timeout_s: float) -> str:
        """Everything the process still writes until it closes its output; fails after `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        start = len(self.seen)
        while True:
            try:
                line = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError("output not closed:\n" + "".join(self.seen)) from None
            if not line:
                return "".join(self.seen[start:])
            self.seen.append(line)


def kill(service: Service) -> None:
    """SIGKILL the whole process group: no handler, no cleanup, like an OOM kill or a lost host."""
    os.killpg(service.process.pid, signal.SIGKILL)
    service.process.wait()
    service.stop()  # closes its log


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: Any
    at: float = field(default_factory=time.monotonic)


class WebhookTarget:
    """A local HTTP server; every request is recorded (with its arrival time) and answered by path:

    - `/status/<code>` answers <code>;
    - `/sequence/<c1>,<c2>,.../<tag>` answers c1 to its first request, c2 to the second, ... and the
      last code from then on; a code written `503+2` adds `Retry-After: 2`;
    - `/switch/<tag>` answers `switches[tag]` (400 until a test sets it).
    """

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.switches: dict[str, int] = {}
        target = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = json.loads(self.rfile.read(length) or b"null")
                target.received.append(
                    Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                )
                code, retry_after = target.answer(self.path)
                self.send_response(code)
                if retry_after is not None:
                    self.send_header("retry-after", retry_after)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def answer(self, path: str) -> tuple[int, str | None]:
        parts = path.strip("/").split("/")
        if parts[0] == "status":
            return int(parts[1]), None
        if parts[0] == "sequence":
            codes = parts[1].split(",")
            seen = len(self.by_path(path)) - 1
            code, _, retry_after = codes[min(seen, len(codes) - 1)].partition("+")
            return int(code), retry_after or None
        if parts[0] == "switch":
            return self.switches.get(parts[1], 400), None
        return 200, None

    def by_path(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]


@pytest.fixture(scope="session")
def webhook_target() -> Iterator[WebhookTarget]:
    target = WebhookTarget()
    target.thread.start()
    yield target
    target.server.shutdown()
    target.server.server_close()


@pytest.fixture
async def http(api: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=api, timeout=10) as client:
        yield client


async def enqueue_job(
    http: httpx.AsyncClient, task: str, body: dict[str, Any], **params: Any
) -> dict[str, Any]:
    """POST /jobs/{task}; the 202 answer's body (fails on any other status)."""
    response = await http.post(f"/jobs/{task}", json=body, params=params)
    assert response.status_code == 202, response.text
    accepted: dict[str, Any] = response.json()
    return accepted


async def wait_for_status(
    http: httpx.AsyncClient, url: str, done: Callable[[dict[str, Any]], bool], timeout_s: float = 20
) -> dict[str, Any]:
    """Poll a job's status URL until `done(body)`; fails with the last body seen."""
    deadline = time.monotonic() + timeout_s
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        response = await http.get(url)
        assert response.status_code == 200, response.text
        body = response.json()
        if done(body):
            return body
        await asyncio.sleep(0.05)
    raise AssertionError(f"job did not reach the expected state in {timeout_s}s; last status: {body}")


def terminal(body: dict[str, Any]) -> bool:
    return bool(body["is_terminal"])
