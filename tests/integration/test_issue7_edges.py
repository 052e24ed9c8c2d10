"""Edges of issue 7 with the real Redis and real worker processes: concurrency places given back by a
retry, a cancel, a SIGTERM and a SIGKILL; a rate shared by two pools; schedules fired by pools of
other queues; nested and failing workflows, cancels and a 200-member chord on two workers; results
that JSON cannot carry."""

from __future__ import annotations

import asyncio
import json
import math
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from tests.integration.tasks.edge_probes import events_key

from .conftest import Service, enqueue_job, kill, start_worker, terminal, wait_for_status
from .test_schedules import ENABLED, fired_ticks, ms, wait_for_tick
from .test_worker_loss import epoch, wait_all, worker_of
from .test_workflows import start

# a worker's concurrency place and its lease last this long in the tests that kill one (JOBS_LEASE_S)
SHORT_LEASE_S = 2.0
SHUTDOWN_GRACE_S = 2.0  # JOBS_SHUTDOWN_GRACE_S of the workers the tests start (conftest)


async def start_workers(
    redis_url: str, prefix: str, log_dir: Path, names: list[str], **env: str
) -> list[tuple[Service, str]]:
    """Start `arq workers.WorkerSettings` processes side by side; each with its worker id."""
    return list(
        await asyncio.gather(
            *(asyncio.to_thread(start_worker, redis_url, prefix, log_dir, name, **env) for name in names)
        )
    )


async def stop_all(services: list[Service]) -> None:
    await asyncio.gather(*(asyncio.to_thread(service.stop) for service in services))


async def start_workflow(http: httpx.AsyncClient, spec: dict[str, Any]) -> str:
    """POST /workflows; the new workflow's status URL."""
    url: str = (await start(http, spec))["status_url"]
    return url


def probe_events(client: redis.Redis, prefix: str, tag: str) -> list[dict[str, Any]]:
    """What the probes of `tag` noted, in time order."""
    raw: list[bytes] = client.lrange(events_key(prefix, tag), 0, -1)  # type: ignore[assignment]
    return sorted((json.loads(entry) for entry in raw), key=lambda e: e["at"])


def runs(events: list[dict[str, Any]]) -> list[tuple[str, int, int]]:
    """(event, n, attempt) in time order."""
    return [(e["event"], e["n"], e["attempt"]) for e in events]


def is_throttled(reason: str) -> Callable[[dict[str, Any]], bool]:
    """Whether a job's status says it waits for its task's `reason` limit."""

    def check(body: dict[str, Any]) -> bool:
        return body["throttled"] is not None and body["throttled"]["reason"] == reason

    return check


def first_at(events: list[dict[str, Any]], event: str, n: int, attempt: int = 1) -> float:
    at: float = next(e["at"] for e in events if (e["event"], e["n"], e["attempt"]) == (event, n, attempt))
    return at


# ------------------------------------------------------------------------ rate and concurrency limits


@pytest.fixture
async def capped_worker(redis_url: str, key_prefix: str, tmp_path: Path) -> AsyncIterator[Service]:
    """One worker of the `lifecycle` queue, where `edge_capped` (at most one running) goes."""
    ((service, _),) = await start_workers(
        redis_url, key_prefix, tmp_path, ["capped"], JOBS_QUEUE_NAME="lifecycle"
    )
    yield service
    await stop_all([service])


async def test_a_retried_job_gives_its_place_back_and_waits_for_it_again_as_attempt_1(
    http: httpx.AsyncClient, redis_client: redis.Redis, key_prefix: str, capped_worker: Service
) -> None:
    tag = uuid.uuid4().hex
    first = await enqueue_job(
        http, "edge_capped", {"tag": tag, "n": 0, "seconds": 0.3, "fail_attempts": 1, "retry_after_s": 0.3}
    )
    await wait_for_status(http, first["status_url"], lambda b: b["status"] == "running")
    second = await enqueue_job(http, "edge_capped", {"tag": tag, "n": 1, "seconds": 1.5})
    # the failed attempt frees the place: the second job runs; the retry, due meanwhile, waits for it
    waiting = await wait_for_status(http, first["status_url"], is_throttled("concurrency"), timeout_s=5)
    assert (waiting["status"], waiting["attempt"], waiting["error"]) == ("pending", 1, None)
    now_running = (await http.get(second["status_url"])).json()  # it had waited for the place too
    assert (now_running["status"], now_running["throttled"]) == ("running", None)

    done = await wait_all(http, [first["status_url"], second["status_url"]], terminal, timeout_s=10)
    assert [(b["status"], b["attempt"], b["result"], b["throttled"]) for b in done] == [
        ("succeeded", 2, 0, None),
        ("succeeded", 1, 1, None),
    ]
    events = probe_events(redis_client, key_prefix, tag)
    assert runs(events) == [
        ("start", 0, 1),
        ("fail", 0, 1),
        ("start", 1, 1),
        ("end", 1, 1),
        ("start", 0, 2),
        ("end", 0, 2),
    ]
    # each start follows the previous end at once: woken by the place given back, not by a lease
    gaps = [later["at"] - earlier["at"] for earlier, later in pairwise(events) if later["event"] == "start"]
    assert max(gaps) < 1.0, gaps


async def test_a_throttled_job_cancelled_while_it_waits_does_not_hold_back_the_next_one(
    http: httpx.AsyncClient, redis_client: redis.Redis, key_prefix: str, capped_worker: Service
) -> None:
    tag = uuid.uuid4().hex
    running = await enqueue_job(http, "edge_capped", {"tag": tag, "n": 0, "seconds": 1.0})
    await wait_for_status(http, running["status_url"], lambda b: b["status"] == "running")
    cancelled, after = [await enqueue_job(http, "edge_capped", {"tag": tag, "n": n}) for n in (1, 2)]
    for job in (cancelled, after):
        parked = await wait_for_status(http, job["status_url"], is_throttled("concurrency"))
        assert (parked["status"], parked["attempt"]) == ("pending", 0)

    response = await http.delete(cancelled["status_url"])
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["throttled"]) == ("cancelled", None)

    done = await wait_all(http, [running["status_url"], after["status_url"]], terminal, timeout_s=10)
    assert [(b["status"], b["attempt"]) for b in done] == [("succeeded", 1), ("succeeded", 1)]
    events = probe_events(redis_client, key_prefix, tag)
    assert runs(events) == [("start", 0, 1), ("end", 0, 1), ("start", 2, 1), ("end", 2, 1)]
    # the cancelled job's waiting entry was skipped: the next one started at once, not a lease later
    assert first_at(events, "start", 2) - first_at(events, "end", 0) < 1.0
    gone = (await http.get(cancelled["status_url"])).json()
    assert (gone["status"], gone["attempt"], gone["throttled"]) == ("cancelled", 0, None)


async def test_delayed_jobs_of_a_limited_task_wait_scheduled_then_run_one_at_a_time(
    http: httpx.AsyncClient, redis_client: redis.Redis, key_prefix: str, capped_worker: Service
) -> None:
    tag = uuid.uuid4().hex
    jobs = [
        await enqueue_job(http, "edge_capped", {"tag": tag, "n": n, "seconds": 0.3}, delay=1)
        for n in range(3)
    ]
    early = [(await http.get(job["status_url"])).json() for job in jobs]
    assert [(b["status"], b["throttled"]) for b in early] == [("scheduled", None)] * 3
    # once due, one runs and the other two wait for its place, without an attempt
    parked = await wait_for_status(http, jobs[2]["status_url"], is_throttled("concurrency"), timeout_s=5)
    assert (parked["status"], parked["attempt"]) == ("pending", 0)

    done = await wait_all(http, [job["status_url"] for job in jobs], terminal, timeout_s=10)
    assert [(b["status"], b["attempt"], b["result"], b["throttled"]) for b in done] == [
        ("succeeded", 1, n, None) for n in range(3)
    ]
    events = probe_events(redis_client, key_prefix, tag)
    assert [e["event"] for e in events] == ["start", "end"] * 3  # never two at once
    assert sorted(e["n"] for e in events if e["event"] == "start") == [0, 1, 2]


async def test_hundreds_of_throttled_jobs_hide_no_free_job_behind_them_and_each_runs_once(
    http: httpx.AsyncClient, redis_client: redis.Redis, redis_url: str, key_prefix: str, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex
    # queued before any worker of the queue runs: at its first poll, 300 limited jobs come first
    limited = await asyncio.gather(
        *(enqueue_job(http, "edge_capped", {"tag": tag, "n": n}) for n in range(300))
    )
    free = await enqueue_job(http, "hold", {"seconds": 0})  # no limit, last in the queue's order
    started = await start_workers(redis_url, key_prefix, tmp_path, ["pager"], JOBS_QUEUE_NAME="lifecycle")
    try:
        body = await wait_for_status(http, free["status_url"], terminal, timeout_s=5)
        done = await wait_all(http, [job["status_url"] for job in limited], terminal, timeout_s=30)
    finally:
        await stop_all([service for service, _ in started])
    assert (body["status"], body["attempt"]) == ("succeeded", 1)
    assert [(b["status"], b["attempt"], b["result"]) for b in done] == [
        ("succeeded", 1, n) for n in range(300)
    ]
    events = probe_events(redis_client, key_prefix, tag)
    assert [e["event"] for e in events] == ["start", "end"] * 300  # one at a time, each once
    assert sorted(e["n"] for e in events if e["event"] == "start") == list(range(300))
    # the claim paged past the parked jobs: the free one did not wait for the limited ones to drain
    overtaking = sum(e["event"] == "start" and e["at"] < epoch(body["started_at"]) for e in events)
    assert overtaking < 10, overtaking


async def test_sigkill_of_the_worker_holding_the_place_frees_it_within_the_lease(
    http: httpx.AsyncClient, redis_client: redis.Redis, redis_url: str, key_prefix: str, tmp_path: Path
) -> None:
    started = await start_workers(
        redis_url,
        key_prefix,
        tmp_path,
        ["place-1", "place-2"],
        JOBS_QUEUE_NAME="lifecycle",
        JOBS_LEASE_S=str(SHORT_LEASE_S),
    )
    by_id = {worker_id: service for service, worker_id in started}
    tag = uuid.uuid4().hex
    try:
        holder = await enqueue_job(
            http, "edge_capped", {"tag": tag, "n": 0, "seconds": 0.2, "first_attempt_seconds": 60}
        )
        await wait_for_status(http, holder["status_url"], lambda b: b["status"] == "running")
        waiting = [
            await enqueue_job(http, "edge_capped", {"tag": tag, "n": n, "seconds": 0.2}) for n in (1, 2)
        ]
        for job in waiting:
            await wait_for_status(http, job["status_url"], is_throttled("concurrency"))
        killed_at = time.time()
        kill(by_id.pop(worker_of(redis_client, key_prefix, holder["job_id"])))

        urls = [holder["status_url"]] + [job["status_url"] for job in waiting]
        done = await wait_all(http, urls, terminal, timeout_s=SHORT_LEASE_S + 8)
    finally:
        await stop_all(list(by_id.values()))
    # the holder ran again (its first attempt died with the worker); the others once; all on the survivor
    assert [(b["status"], b["attempt"], b["result"]) for b in done] == [
        ("succeeded", 2, 0),
        ("succeeded", 1, 1),
        ("succeeded", 1, 2),
    ]
    survivor = next(iter(by_id))
    assert {b["job_id"]: worker_of(redis_client, key_prefix, b["job_id"]) for b in done} == {
        b["job_id"]: survivor for b in done
    }
    after = [e for e in probe_events(redis_client, key_prefix, tag) if e["at"] > killed_at]
    assert [e["event"] for e in after] == ["start", "end"] * 3  # one at a time on the survivor
    # the dead worker's place freed itself within the lease (plus polls), not later
    assert after[0]["at"] - killed_at < SHORT_LEASE_S + 1.0, after[0]["at"] - killed_at
    assert after[-1]["at"] - killed_at < SHORT_LEASE_S + 3.0


async def test_sigterm_puts_a_limited_job_back_and_gives_its_place_to_the_next_worker_at_once(
    http: httpx.AsyncClient, redis_client: redis.Redis, redis_url: str, key_prefix: str, tmp_path: Path
) -> None:
    # the default lease (10 s): a place not given back at shutdown would keep the others waiting that long
    started = await start_workers(
        redis_url, key_prefix, tmp_path, ["leaving-1", "leaving-2"], JOBS_QUEUE_NAME="lifecycle"
    )
    by_id = {worker_id: service for service, worker_id in started}
    tag = uuid.uuid4().hex
    try:
        holder = await enqueue_job(http, "edge_capped", {"tag": tag, "n": 0, "seconds": 3})
        await wait_for_status(http, holder["status_url"], lambda b: b["status"] == "running")
        waiting = await enqueue_job(http, "edge_capped", {"tag": tag, "n": 1, "seconds": 0.2})
        await wait_for_status(http, waiting["status_url"], is_throttled("concurrency"))
        leaving = by_id.pop(worker_of(redis_client, key_prefix, holder["job_id"]))
        signalled_at = time.time()
        # SIGTERM; the grace (2 s) is shorter than the job
        assert await asyncio.to_thread(leaving.stop) == 0

        urls = [holder["status_url"], waiting["status_url"]]
        done = await wait_all(http, urls, terminal, timeout_s=10)
    finally:
        await stop_all(list(by_id.values()))
    # the interrupted attempt does not count: both end with one attempt, run on the other worker
    assert [(b["status"], b["attempt"], b["result"]) for b in done] == [
        ("succeeded", 1, 0),
        ("succeeded", 1, 1),
    ]
    after = [e for e in probe_events(redis_client, key_prefix, tag) if e["at"] > signalled_at]
    assert [e["event"] for e in after] == ["start", "end"] * 2  # the holder's first start came before
    # at the end of the grace its place was given back, and the next start followed at once
    assert after[0]["at"] - signalled_at < SHUTDOWN_GRACE_S + 1.0, after[0]["at"] - signalled_at


async def test_a_rate_limit_holds_across_pools_of_two_queues(
    http: httpx.AsyncClient, worker: Service, redis_url: str, key_prefix: str, tmp_path: Path
) -> None:
    ((high, _),) = await start_workers(
        redis_url, key_prefix, tmp_path, ["paced-high"], settings_class="workers.HighWorkerSettings"
    )
    tag = uuid.uuid4().hex
    try:
        jobs = await asyncio.gather(
            *(
                enqueue_job(http, "edge_paced", {"tag": tag, "n": n}, queue="high" if n % 2 else "default")
                for n in range(20)
            )
        )
        done = await wait_all(http, [job["status_url"] for job in jobs], terminal, timeout_s=15)
    finally:
        await stop_all([high])
    assert [(b["status"], b["queue"], b["result"]) for b in done] == [
        ("succeeded", "high" if n % 2 else "default", n) for n in range(20)
    ]
    starts = sorted(epoch(b["started_at"]) for b in done)
    # 10/s: any 11 starts in a row span a second (less the few ms an attempt's start may lag its claim)
    spans = [later - first for first, later in zip(starts, starts[10:], strict=False)]
    assert min(spans) >= 0.98, spans


# ------------------------------------------------------------------------------------ periodic jobs


async def test_pools_of_other_queues_fire_each_tick_once_into_the_tasks_own_queue(
    http: httpx.AsyncClient,
    worker: Service,
    redis_client: redis.Redis,
    redis_url: str,
    key_prefix: str,
    tmp_path: Path,
) -> None:
    earlier = set(fired_ticks(redis_client, key_prefix))
    pools = await asyncio.gather(
        *(
            asyncio.to_thread(
                start_worker, redis_url, key_prefix, tmp_path, name, settings_class=cls, **ENABLED
            )
            for name, cls in (
                ("sched-high", "workers.HighWorkerSettings"),
                ("sched-low", "workers.LowWorkerSettings"),
            )
        )
    )
    services = [service for service, _ in pools]
    try:
        start = time.time()
        end = start + 3
        await wait_for_tick(redis_client, key_prefix, ms(math.ceil(end)))
    finally:
        await stop_all(services)
    fired = fired_ticks(redis_client, key_prefix)  # fails if a tick made two jobs
    in_window = sorted(tick for tick in fired if ms(start) <= tick < ms(end))
    assert in_window == [1000 * second for second in range(math.ceil(start), math.ceil(end))]
    for tick in in_window:
        body = await wait_for_status(http, f"/jobs/{fired[tick]}", terminal)
        # made by a `high` or `low` worker, run by the default pool: record_tick's own queue
        assert (body["queue"], body["schedule"], body["status"]) == ("default", "every_second", "succeeded")
    # every new tick was recorded as fired exactly once, by one of the two pools (which one wins a
    # tick is a race: one pool may win them all)
    made = set(fired) - earlier
    lines = [re.findall(r'"job_id":"(cron-every_second-\d+-[0-9a-f]{8})"', s.log()) for s in services]
    assert sorted(job for found in lines for job in found) == sorted(fired[tick] for tick in made)


# ----------------------------------------------------------------------------------------- workflows


async def test_a_group_nested_in_a_chain_takes_one_result_and_hands_on_the_list(
    http: httpx.AsyncClient, worker: Service
) -> None:
    url = await start_workflow(
        http,
        {
            "type": "chain",
            "steps": [
                {"task": "wf_add", "input": {"a": 2, "b": 3}},
                {"type": "group", "steps": [{"task": "wf_double"}, {"task": "wf_square"}]},
                {"task": "wf_total"},
            ],
        },
    )
    body = await wait_for_status(http, url, terminal)
    assert (body["status"], body["result"], body["error"]) == ("succeeded", {"count": 2, "total": 35}, None)
    assert [(s["path"], s["stage"], s["task"], s["status"], s["result"]) for s in body["steps"]] == [
        ("steps[0]", 0, "wf_add", "succeeded", {"n": 5}),
        ("steps[1].steps[0]", 1, "wf_double", "succeeded", {"n": 10}),
        ("steps[1].steps[1]", 1, "wf_square", "succeeded", {"n": 25}),
        ("steps[2]", 2, "wf_total", "succeeded", {"count": 2, "total": 35}),
    ]


async def test_a_retried_step_advances_its_chain_once(
    http: httpx.AsyncClient, worker: Service, redis_client: redis.Redis, key_prefix: str
) -> None:
    tag = uuid.uuid4().hex
    url = await start_workflow(
        http,
        {
            "type": "chain",
            "steps": [
                {
                    "task": "edge_flaky",
                    "input": {"tag": tag, "n": 4, "fail_attempts": 1, "retry_after_s": 0.1},
                },
                {"task": "wf_double"},
            ],
        },
    )
    body = await wait_for_status(http, url, terminal)
    assert (body["status"], body["result"]) == ("succeeded", {"n": 8})
    jobs = [(await http.get(f"/jobs/{s['job_id']}")).json() for s in body["steps"]]
    assert [(j["task"], j["status"], j["attempt"], j["result"]) for j in jobs] == [
        ("edge_flaky", "succeeded", 2, {"n": 4}),
        ("wf_double", "succeeded", 1, {"n": 8}),
    ]
    assert runs(probe_events(redis_client, key_prefix, tag)) == [
        ("start", 4, 1),
        ("fail", 4, 1),
        ("start", 4, 2),
        ("end", 4, 2),
    ]


async def test_a_chord_member_failing_after_its_retries_fails_it_and_the_callback_never_runs(
    http: httpx.AsyncClient, worker: Service
) -> None:
    member = {"task": "edge_flaky"}
    url = await start_workflow(
        http,
        {
            "type": "chord",
            "steps": [
                {**member, "input": {"n": 1}},
                {**member, "input": {"n": 2, "fail_attempts": 5, "retry_after_s": 0.1}},
                {**member, "input": {"n": 3}},
            ],
            "callback": {"task": "wf_total"},
        },
    )
    body = await wait_for_status(http, url, terminal)
    failed_job = body["steps"][1]["job_id"]
    assert (body["status"], body["result"]) == ("failed", None)
    assert body["error"] == {
        "type": "TransientError",
        "message": "step steps[1] (edge_flaky) failed: attempt 2 fails",
        "step": "steps[1]",
        "task": "edge_flaky",
        "job_id": failed_job,
        "detail": None,
    }
    # the members that succeeded keep their results; the callback was never enqueued
    assert [(s["path"], s["status"], s["result"]) for s in body["steps"]] == [
        ("steps[0]", "succeeded", {"n": 1}),
        ("steps[1]", "failed", None),
        ("steps[2]", "succeeded", {"n": 3}),
        ("callback", "cancelled", None),
    ]
    job = (await http.get(f"/jobs/{failed_job}")).json()
    assert (job["status"], job["attempt"], job["dead_lettered"]) == ("failed", 2, True)
    assert (await http.get(f"/jobs/{body['steps'][3]['job_id']}")).status_code == 404


async def test_cancelling_a_chord_while_its_members_run_stops_them_all(
    http: httpx.AsyncClient, worker: Service
) -> None:
    steps = [{"task": "wf_double", "input": {"n": n, "delay_s": 20}} for n in range(3)]
    url = await start_workflow(http, {"type": "chord", "steps": steps, "callback": {"task": "wf_total"}})
    await wait_for_status(http, url, lambda b: [s["status"] for s in b["steps"][:3]] == ["running"] * 3)

    response = await http.delete(url)
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["is_terminal"]) == ("cancelled", True)
    body = await wait_for_status(
        http, url, lambda b: all(s["status"] == "cancelled" for s in b["steps"]), timeout_s=5
    )
    assert (body["status"], body["result"], body["error"]) == ("cancelled", None, None)
    jobs = [(await http.get(f"/jobs/{s['job_id']}")).json() for s in body["steps"][:3]]
    assert [(j["status"], j["attempt"], j["result"]) for j in jobs] == [("cancelled", 1, None)] * 3
    assert (await http.get(f"/jobs/{body['steps'][3]['job_id']}")).status_code == 404

    again = await http.delete(url)
    assert again.status_code == 409
    assert again.json() == {
        "error": "workflow_not_cancellable",
        "message": f"workflow {body['workflow_id']} has already ended (cancelled); only unfinished "
        "workflows can be cancelled",
        "workflow_id": body["workflow_id"],
        "status": "cancelled",
    }


async def test_cancelling_one_members_job_cancels_the_workflow_and_stops_its_siblings(
    http: httpx.AsyncClient, worker: Service
) -> None:
    steps = [{"task": "wf_double", "input": {"n": n, "delay_s": 3}} for n in range(2)]
    url = await start_workflow(http, {"type": "group", "steps": steps})
    running = await wait_for_status(
        http, url, lambda b: [s["status"] for s in b["steps"]] == ["running", "running"]
    )
    first, sibling = (s["job_id"] for s in running["steps"])
    assert (await http.delete(f"/jobs/{first}")).status_code == 202
    await wait_for_status(http, f"/jobs/{first}", terminal, timeout_s=5)
    body = (await http.get(url)).json()
    assert (body["status"], body["is_terminal"]) == ("cancelled", True)

    sibling_end = await wait_for_status(http, f"/jobs/{sibling}", terminal, timeout_s=6)
    assert sibling_end["status"] == "cancelled"  # today: "succeeded", 3 s after its workflow "ended"


async def test_a_chord_of_200_tiny_members_on_two_workers_calls_back_once_each_time(
    http: httpx.AsyncClient,
    worker: Service,
    redis_client: redis.Redis,
    redis_url: str,
    key_prefix: str,
    tmp_path: Path,
) -> None:
    started = await start_workers(
        redis_url, key_prefix, tmp_path, ["chord-1", "chord-2"], JOBS_QUEUE_NAME="lifecycle"
    )
    members = [{"task": "wf_square", "input": {"n": n}, "queue": "lifecycle"} for n in range(200)]
    spec = {"type": "chord", "steps": members, "callback": {"task": "wf_total", "queue": "lifecycle"}}
    try:
        urls = await asyncio.gather(*(start_workflow(http, spec) for _ in range(3)))
        bodies = [await wait_for_status(http, url, terminal, timeout_s=20) for url in urls]
    finally:
        await stop_all([service for service, _ in started])
    total = {"count": 200, "total": sum(n * n for n in range(200))}
    assert [(b["status"], b["result"]) for b in bodies] == [("succeeded", total)] * 3
    for body in bodies:
        callback = body["steps"][-1]
        assert redis_client.get(f"{key_prefix}:wf-calls:{callback['job_id']}") == b"1"
        assert [s["result"] for s in body["steps"][:-1]] == [{"n": n * n} for n in range(200)]
    members_by = {worker_of(redis_client, key_prefix, s["job_id"]) for b in bodies for s in b["steps"][:-1]}
    assert members_by == {worker_id for _, worker_id in started}  # both workers finished members


async def test_a_step_result_beyond_json_fails_the_workflow_naming_the_step(
    http: httpx.AsyncClient, worker: Service
) -> None:
    url = await start_workflow(
        http,
        {
            "type": "chain",
            "steps": [
                {"task": "edge_unjsonable", "input": {"kind": "bigint"}, "queue": "default"},
                {"task": "wf_double"},
            ],
        },
    )
    body = await wait_for_status(http, url, terminal)
    step = body["steps"][0]
    assert body["status"] == "failed"
    assert body["error"] == {
        "type": "TypeError",
        "message": "step steps[0] (edge_unjsonable) failed: Integer exceeds 64-bit range",
        "step": "steps[0]",
        "task": "edge_unjsonable",
        "job_id": step["job_id"],
        "detail": None,
    }
    assert [s["status"] for s in body["steps"]] == ["failed", "cancelled"]
    job = (await http.get(f"/jobs/{step['job_id']}")).json()
    # a result JSON cannot carry is the same every time: not retried
    assert (job["status"], job["attempt"], job["dead_lettered"]) == ("failed", 1, True)


# --------------------------------------------------------------------- results JSON cannot carry


async def test_a_result_beyond_64_bits_fails_the_job_and_the_worker_lives_on(
    http: httpx.AsyncClient, redis_url: str, key_prefix: str, tmp_path: Path
) -> None:
    ((victim, _),) = await start_workers(
        redis_url, key_prefix, tmp_path, ["victim"], JOBS_QUEUE_NAME="lifecycle", JOBS_LEASE_S="2"
    )
    job = await enqueue_job(http, "edge_unjsonable", {"kind": "bigint"})
    try:
        deadline = time.monotonic() + 10
        body = (await http.get(job["status_url"])).json()
        while not body["is_terminal"] and victim.process.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            body = (await http.get(job["status_url"])).json()
        alive = victim.process.poll() is None
    finally:
        await stop_all([victim])
        if not (await http.get(job["status_url"])).json()["is_terminal"]:
            # no later worker of the queue may run it (it would die too): it ends cancelled at its start
            assert (await http.delete(job["status_url"])).status_code in (200, 202)
    assert alive, "the worker died running the job"
    assert (body["status"], body["dead_lettered"]) == ("failed", True)
