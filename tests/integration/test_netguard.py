"""The workers' address guard end to end: real API, real `arq workers.WorkerSettings` processes and
listeners this test owns on 127.0.0.1 and ::1. A webhook to loopback, however spelled, fails at once
and never connects; with JOBS_WEBHOOK_ALLOWED_HOSTS naming it, it is sent."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.listener import Listener

from .conftest import Service, enqueue_job, start_worker, terminal, wait_for_status

GUARDED_QUEUE = "lifecycle"  # served by a worker without exceptions
OPENED_QUEUE = "low"  # served by a worker allowing 127.0.0.1
HINT = "JOBS_WEBHOOK_ALLOWED_HOSTS opens exceptions"


@pytest.fixture(scope="module")
def workers(redis_url: str, key_prefix: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The two workers, started side by side (a worker takes a second or two to start)."""
    log_dir = tmp_path_factory.mktemp("netguard")
    pools: dict[str, dict[str, str]] = {
        "guarded": {"JOBS_QUEUE_NAME": GUARDED_QUEUE, "JOBS_WEBHOOK_ALLOWED_HOSTS": ""},
        "opened": {"JOBS_QUEUE_NAME": OPENED_QUEUE, "JOBS_WEBHOOK_ALLOWED_HOSTS": "127.0.0.1"},
    }

    def start(name: str) -> Service:
        return start_worker(redis_url, key_prefix, Path(log_dir), name, **pools[name])[0]

    with ThreadPoolExecutor(len(pools)) as pool:
        started = list(pool.map(start, pools))
    try:
        yield
    finally:
        for service in started:
            service.stop()


async def send(http: httpx.AsyncClient, url: str, queue: str, payload: Any = None) -> dict[str, Any]:
    """Enqueue a webhook to `url` on `queue`; its status once it has ended."""
    accepted = await enqueue_job(http, "send_webhook", {"url": url, "payload": payload}, queue=queue)
    return await wait_for_status(http, accepted["status_url"], terminal)


async def assert_blocked(http: httpx.AsyncClient, url: str, message: str) -> None:
    done = await send(http, url, GUARDED_QUEUE, {"n": 1})
    assert (done["status"], done["attempt"], done["dead_lettered"]) == ("failed", 1, True), url
    assert done["error"] == {"type": "WebhookBlockedError", "message": message}, url
    letter = (await http.get(f"/dead-letters/{done['job_id']}")).json()
    assert (letter["reason"], letter["attempts"], letter["error"]["type"]) == (
        "permanent_error",
        1,
        "WebhookBlockedError",
    )


async def test_every_spelling_of_loopback_fails_at_once_and_connects_to_nothing(
    http: httpx.AsyncClient, workers: None
) -> None:
    async with Listener() as listener:
        port = listener.port
        loopback = f"webhook host 127.0.0.1 is blocked: loopback address; {HINT}"
        # the API's URL type writes the numeric spellings as 127.0.0.1 before the job is stored
        for host in ("127.0.0.1", "127.1", "0x7f.1", "2130706433", "017700000001"):
            await assert_blocked(http, f"http://{host}:{port}/hook", loopback)
        mapped = f"webhook host ::ffff:7f00:1 is blocked: loopback address 127.0.0.1 in IPv6 form (IPv4-mapped); {HINT}"
        await assert_blocked(http, f"http://[::ffff:127.0.0.1]:{port}/hook", mapped)
        # the guard names the first address the resolver answers (the worker asks the same resolver)
        first = socket.getaddrinfo("localhost", port, type=socket.SOCK_STREAM)[0][4][0]
        named = f"webhook host localhost is blocked: it resolves to {first} (loopback address); {HINT}"
        await assert_blocked(http, f"http://localhost:{port}/hook", named)
        await asyncio.sleep(0.2)  # time for a stray connection to arrive
    assert (listener.connections, listener.received) == (0, [])


def ipv6_loopback_missing() -> str | None:
    """Why this host cannot listen on ::1, or None when it can."""
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError as exc:
        return str(exc)
    return None


async def test_ipv6_loopback_fails_at_once_and_connects_to_nothing(
    http: httpx.AsyncClient, workers: None
) -> None:
    missing = ipv6_loopback_missing()
    if missing is not None:
        pytest.skip(f"cannot listen on ::1 here: {missing}")
    async with Listener("::1") as listener:
        await assert_blocked(
            http, f"{listener.url}/hook", f"webhook host ::1 is blocked: loopback address; {HINT}"
        )
        await asyncio.sleep(0.2)  # time for a stray connection to arrive
    assert (listener.connections, listener.received) == (0, [])


async def test_an_allowed_host_gets_the_webhook_with_a_null_payload_as_null(
    http: httpx.AsyncClient, workers: None
) -> None:
    async with Listener() as listener:
        done = await send(http, f"{listener.url}/hook", OPENED_QUEUE, None)
    assert (done["status"], done["attempt"], done["result"]["status_code"]) == ("succeeded", 1, 204)
    assert listener.connections == 1
    [arrived] = listener.received
    assert (arrived.request_line, arrived.body) == ("POST /hook HTTP/1.1", b"null")
    assert (arrived.headers["content-type"], arrived.headers["content-length"]) == ("application/json", "4")
