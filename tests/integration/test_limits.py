"""Per-task limits across worker processes: a rate limit of 10/s over 2 workers (the target never
sees more than 10 requests in any second, and gets all of them) and a concurrency limit of 2 (never
more than two running at once); held-back jobs say they are throttled and count no attempt."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
import pytest

from .conftest import Service, WebhookTarget, enqueue_job, start_worker, terminal, wait_for_status

JOBS = 30
RATE = 10  # paced_ping's limit: 10/s


@pytest.fixture(scope="module")
def second_worker(
    redis_url: str, key_prefix: str, worker: Service, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    """A second `arq workers.WorkerSettings` beside the session's worker: limits hold across both."""
    service, _ = start_worker(redis_url, key_prefix, Path(tmp_path_factory.mktemp("limits")), "worker-2")
    yield service
    service.stop()


def most_in_any_window(times: list[float], window_s: float) -> int:
    """The largest number of `times` within any half-open window [t, t + window_s)."""
    ordered = sorted(times)
    return max(sum(1 for u in ordered if t <= u < t + window_s) for t in ordered)


async def warm_up(http: httpx.AsyncClient, url: str) -> None:
    """Run paced pings until both workers have run one: a worker's first request pays for setting up
    its HTTP client (tens of ms), which would bunch the target's arrivals by that much. The limit
    spaces the jobs' starts; this keeps the measurement to that."""
    workers: set[str] = set()
    for n in range(20):
        job = await enqueue_job(http, "paced_ping", {"url": url, "n": n})
        done = await wait_for_status(http, job["status_url"], terminal)
        assert done["status"] == "succeeded", done
        workers.add(done["result"]["worker"])
        if len(workers) == 2:
            return
    raise AssertionError("20 jobs all ran on one worker")


async def test_a_rate_limit_spreads_jobs_across_workers_and_loses_none(
    http: httpx.AsyncClient, webhook_target: WebhookTarget, second_worker: Service
) -> None:
    path = f"/paced/{uuid.uuid4().hex[:8]}"
    await warm_up(http, f"{webhook_target.url}{path}/warm-up")
    accepted = await asyncio.gather(
        *(enqueue_job(http, "paced_ping", {"url": webhook_target.url + path, "n": n}) for n in range(JOBS))
    )
    # the last jobs wait for their slots: pending, throttled by the rate, with the time of their slot
    waiting = (await http.get(accepted[-1]["status_url"])).json()
    assert (waiting["status"], waiting["attempt"]) == ("pending", 0)
    assert waiting["throttled"] is not None and waiting["throttled"]["reason"] == "rate"
    assert waiting["throttled"]["next_try_at"] > waiting["enqueued_at"]

    done = [await wait_for_status(http, job["status_url"], terminal, timeout_s=30) for job in accepted]
    assert [(d["status"], d["attempt"], d["result"]["n"], d["throttled"]) for d in done] == [
        ("succeeded", 1, n, None) for n in range(JOBS)
    ]
    received = webhook_target.by_path(path)
    assert sorted(r.body["n"] for r in received) == list(range(JOBS))  # every job, once
    arrivals = sorted(r.at for r in received)
    print(f"\nshortest gap between two requests: {min(b - a for a, b in pairwise(arrivals)) * 1000:.0f} ms")
    assert most_in_any_window(arrivals, 1.0) <= RATE
    # and the jobs' own starts: any 11 in a row span at least a second
    starts = sorted(datetime.fromisoformat(d["started_at"]).timestamp() for d in done)
    assert min(later - first for first, later in zip(starts, starts[RATE:], strict=False)) >= 1.0


async def test_a_concurrency_limit_never_lets_more_than_two_run_at_once(
    http: httpx.AsyncClient, webhook_target: WebhookTarget, second_worker: Service
) -> None:
    path = f"/capped/{uuid.uuid4().hex[:8]}"
    body = {"url": webhook_target.url + path, "seconds": 0.3}
    accepted = await asyncio.gather(*(enqueue_job(http, "capped_span", {**body, "n": n}) for n in range(8)))
    throttled: dict[str, Any] | None = None
    for _ in range(40):  # while the first two run, the others wait for a place
        statuses = [(await http.get(job["status_url"])).json() for job in accepted]
        throttled = next((s for s in statuses if s["throttled"]), None)
        if throttled:
            break
        await asyncio.sleep(0.05)
    assert throttled is not None, "no job ever showed it waits for the concurrency limit"
    assert (throttled["status"], throttled["attempt"], throttled["throttled"]["reason"]) == (
        "pending",
        0,
        "concurrency",
    )

    done = [await wait_for_status(http, job["status_url"], terminal, timeout_s=30) for job in accepted]
    assert [(d["status"], d["attempt"], d["result"]) for d in done] == [("succeeded", 1, n) for n in range(8)]
    events = sorted(
        [(r.at, +1) for r in webhook_target.by_path(f"{path}/start")]
        + [(r.at, -1) for r in webhook_target.by_path(f"{path}/end")]
    )
    assert len(events) == 16
    running, most = 0, 0
    for _, change in events:
        running += change
        most = max(most, running)
    assert most == 2  # the limit, and no less: both workers run the task's jobs side by side
