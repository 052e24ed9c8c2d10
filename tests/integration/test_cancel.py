"""DELETE /jobs/{id}: waiting jobs never run, running jobs stop, ARQ's abort bug cannot bite."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import httpx
import pytest
import redis

from .conftest import Service, start_worker, terminal, wait_for_status


async def test_cancel_pending_job_never_runs(
    http: httpx.AsyncClient, redis_url: str, key_prefix: str, tmp_path: Path
) -> None:
    # `hold` runs on the lifecycle queue, which no worker serves yet: the job stays pending
    accepted = await http.post("/jobs/hold", json={"seconds": 0})
    status_url = accepted.json()["status_url"]
    assert (await http.get(status_url)).json()["status"] == "pending"
    cancelled = await http.delete(status_url)
    assert cancelled.status_code == 200
    body = cancelled.json()
    assert (body["status"], body["is_terminal"], body["attempt"], body["started_at"]) == (
        "cancelled",
        True,
        0,
        None,
    )
    assert body["finished_at"] is not None
    later = await http.post("/jobs/hold", json={"seconds": 0})
    service, _ = start_worker(redis_url, key_prefix, tmp_path, "lifecycle", JOBS_QUEUE_NAME="lifecycle")
    try:
        done = await wait_for_status(http, later.json()["status_url"], terminal)
        assert done["status"] == "succeeded"
        await asyncio.sleep(0.3)
        still = (await http.get(status_url)).json()
        assert (still["status"], still["attempt"], still["started_at"]) == ("cancelled", 0, None)
    finally:
        service.stop()
    again = await http.delete(status_url)
    assert again.status_code == 409
    assert again.json()["error"] == "job_not_cancellable" and again.json()["status"] == "cancelled"


async def test_cancel_scheduled_job(http: httpx.AsyncClient, worker: Service) -> None:
    accepted = await http.post("/jobs/noop", params={"delay": 1}, json={})
    response = await http.delete(accepted.json()["status_url"])
    assert (response.status_code, response.json()["status"]) == (200, "cancelled")
    await asyncio.sleep(1.5)
    after = (await http.get(accepted.json()["status_url"])).json()
    assert (after["status"], after["attempt"], after["result"]) == ("cancelled", 0, None)


async def test_cancel_running_job_stops_it(http: httpx.AsyncClient, worker: Service) -> None:
    accepted = await http.post("/jobs/nap", json={"seconds": 30})
    status_url = accepted.json()["status_url"]
    await wait_for_status(http, status_url, lambda b: b["status"] == "running", timeout_s=5)
    asked = time.monotonic()
    response = await http.delete(status_url)
    assert response.status_code == 202
    assert (response.json()["status"], response.json()["cancel_requested"]) == ("running", True)
    done = await wait_for_status(http, status_url, terminal, timeout_s=5)
    assert time.monotonic() - asked < 2.5  # the worker checks every second
    assert (done["status"], done["attempt"], done["result"], done["error"]) == ("cancelled", 1, None, None)
    assert (done["dead_lettered"], done["cancel_requested"]) == (False, False)
    assert (await http.get(f"/dead-letters/{done['job_id']}")).status_code == 404
    assert (await http.delete(status_url)).status_code == 409


async def test_cancel_finished_or_unknown_job(
    http: httpx.AsyncClient, worker: Service, redis_client: redis.Redis
) -> None:
    accepted = await http.post("/jobs/noop", json={})
    await wait_for_status(http, accepted.json()["status_url"], terminal)
    finished = await http.delete(accepted.json()["status_url"])
    assert finished.status_code == 409
    assert finished.json()["status"] == "succeeded"

    unknown = uuid.uuid4().hex
    missing = await http.delete(f"/jobs/{unknown}")
    assert missing.status_code == 404
    assert missing.json() == {
        "error": "job_not_found",
        "message": f"no job with id {unknown!r} (unknown, or its record has expired)",
        "job_id": unknown,
    }
    # nothing was stored for the unknown id (ARQ's abort set would keep it and abort a later job)
    assert list(redis_client.scan_iter(match=f"*{unknown}*", count=1000)) == []
    assert redis_client.zscore("arq:abort", unknown) is None


@pytest.mark.parametrize("path", ["/jobs/", "/jobs/%20"])
async def test_cancel_needs_an_id(http: httpx.AsyncClient, path: str) -> None:
    response = await http.delete(path)
    assert response.status_code in (404, 405)
    assert response.json()["error"] in ("not_found", "http_error", "job_not_found")
