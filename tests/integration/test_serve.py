"""`python -m app` with JOBS_API_WORKERS=2: two uvicorn processes share the port and each serves
requests (seen from the process that holds each connection), both log as ours, and SIGTERM stops all
of them; a bad setting stops start-up with one line instead of processes failing over and over."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psutil
import pytest

from .conftest import ROOT, Service, http_ok, service_env, start_api


@pytest.fixture
def two_processes(redis_url: str, key_prefix: str, tmp_path: Path) -> Iterator[tuple[Service, str]]:
    service, base = start_api(service_env(redis_url, key_prefix, JOBS_API_WORKERS="2"), tmp_path)
    try:
        service.wait_until(http_ok(f"{base}/health/ready"))
        service.wait_until(lambda: service.log().count("Application startup complete.") == 2)
        yield service, base
    finally:
        service.stop()


def servers(service: Service) -> list[psutil.Process]:
    """uvicorn's worker processes (not multiprocessing's resource tracker)."""
    found = psutil.Process(service.process.pid).children()
    return [p for p in found if "spawn_main" in " ".join(p.cmdline())]


def served_by(base: str, candidates: list[psutil.Process]) -> tuple[int, int]:
    """GET /health/live on a new connection: the status and the pid of the process holding the
    connection's server side."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(f"GET /health/live HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        answer = sock.recv(65536).decode()
        mine = sock.getsockname()[1]
        owners = [
            p.pid
            for p in candidates
            for c in p.net_connections(kind="tcp")
            if c.raddr and c.raddr.port == mine and c.laddr.port == int(port)
        ]
    assert len(owners) == 1, owners
    return int(answer.split(" ", 2)[1]), owners[0]


@contextmanager
def only(serving: psutil.Process, processes: list[psutil.Process]) -> Iterator[None]:
    """The other processes stopped (SIGSTOP): only `serving` accepts new connections meanwhile."""
    others = [p for p in processes if p.pid != serving.pid]
    for other in others:
        os.kill(other.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for other in others:
            os.kill(other.pid, signal.SIGCONT)


def test_two_api_processes_each_serve_and_sigterm_stops_them(two_processes: tuple[Service, str]) -> None:
    service, base = two_processes
    processes = servers(service)
    assert len(processes) == 2
    answers = []
    for serving in processes:
        with only(serving, processes):
            answers.append(served_by(base, processes))
    assert answers == [(200, p.pid) for p in processes]

    started = [
        json.loads(line)
        for line in service.log().splitlines()
        if line.startswith("{") and "Started server process" in line
    ]
    assert sorted((s["logger"], s["event"]) for s in started) == sorted(
        ("uvicorn.error", f"Started server process [{p.pid}]") for p in processes
    )

    began = time.monotonic()
    assert service.stop() == 0
    assert time.monotonic() - began < 10
    assert not any(psutil.pid_exists(p.pid) for p in processes)
    assert "Stopping parent process" in service.log()


def test_a_dashboard_page_from_one_process_carries_a_token_the_other_accepts(
    two_processes: tuple[Service, str],
) -> None:
    """No JOBS_ADMIN_TOKEN: the CSRF secret is shared through Redis, not made per process."""
    service, base = two_processes
    first, second = servers(service)
    with only(first, [first, second]), httpx.Client(base_url=base, timeout=5) as client:
        job = client.post("/jobs/noop", json={}, params={"delay": 3600}).json()["job_id"]
        page = client.get(f"/dashboard/jobs/{job}").text
    found = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', page)
    assert found is not None
    with only(second, [first, second]), httpx.Client(base_url=base, timeout=5) as client:
        refused = client.post(f"/dashboard/jobs/{job}/cancel", headers={"Sec-Fetch-Site": "cross-site"})
        cancelled = client.post(
            f"/dashboard/jobs/{job}/cancel",
            headers={"Sec-Fetch-Site": "cross-site", "X-CSRF-Token": found.group(1)},
        )
        status = client.get(f"/jobs/{job}").json()["status"]
    assert (refused.status_code, cancelled.status_code, status) == (403, 200, "cancelled")


def test_a_bad_setting_stops_several_processes_at_start_up_with_one_line(redis_url: str) -> None:
    env = service_env(redis_url, "it-badconfig", JOBS_API_WORKERS="2", JOBS_QUEUES="high,default,low")
    done = subprocess.run([sys.executable, "-m", "app"], cwd=ROOT, env=env, capture_output=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr.decode().strip().splitlines() == [
        "invalid settings: task 'edge_capped' has queue 'lifecycle', which is not one of JOBS_QUEUES "
        "(high, default, low)"
    ]
