from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime, timedelta, timezone

import httpx
import pytest
from arq.connections import ArqRedis
from redis.asyncio.client import Pipeline
from redis.exceptions import WatchError

from arq_jobs._client import JobClient
from arq_jobs._config import Settings
from arq_jobs._errors import IdempotencyConflictError
from arq_jobs._idempotency import IdempotencyClaim, fingerprint
from arq_jobs._jobs.states import JobState
from arq_jobs._keys import Keys
from arq_jobs._tasks.registry import TaskRegistry
from workers.tasks.noop import NoopInput, noop
from workers.tasks.reports import ReportInput, generate_report

from .conftest import make_settings


def claim_key(key: str) -> str:
    return f"unit:idempotency:{hashlib.sha256(key.encode()).hexdigest()}"


async def record_keys(redis: ArqRedis) -> list[bytes]:
    return sorted([key async for key in redis.scan_iter(match="unit:job:*")])


# --- JobClient -------------------------------------------------------------------------------------


async def test_same_key_and_request_gives_the_same_job(job_client: JobClient, arq_redis: ArqRedis) -> None:
    first = await job_client.enqueue(noop, NoopInput(value={"a": 1}), idempotency_key="order-1")
    again = await job_client.enqueue(noop, NoopInput(value={"a": 1}), idempotency_key="order-1")
    assert first.replayed is False and again.replayed is True
    assert (again.job_id, again.task) == (first.job_id, "noop")
    assert await arq_redis.zcard("unit:queue:default") == 1
    assert await record_keys(arq_redis) == [f"unit:job:{first.job_id}".encode()]
    stored = IdempotencyClaim.parse(await arq_redis.get(claim_key("order-1")))
    assert stored is not None
    assert (stored.key, stored.task, stored.job_id) == ("order-1", "noop", first.job_id)
    assert stored.fingerprint == fingerprint("noop", {"value": {"a": 1}}, None, None)


async def test_same_key_and_another_request_is_a_conflict(job_client: JobClient, arq_redis: ArqRedis) -> None:
    first = await job_client.enqueue(noop, NoopInput(value=1), idempotency_key="k")
    for attempt in (
        job_client.enqueue(noop, NoopInput(value=2), idempotency_key="k"),
        job_client.enqueue(noop, NoopInput(value=1), delay=30, idempotency_key="k"),
        job_client.enqueue(generate_report, ReportInput(rows=1), idempotency_key="k"),
    ):
        with pytest.raises(IdempotencyConflictError) as conflict:
            await attempt
        assert conflict.value.details() == {"idempotency_key": "k", "task": "noop", "job_id": first.job_id}
        assert str(conflict.value) == (
            f"Idempotency-Key 'k' was already used for a different request (task 'noop', job {first.job_id}); "
            "use a new key for a new request"
        )
    assert await arq_redis.zcard("unit:queue:default") == 1
    assert len(await record_keys(arq_redis)) == 1


async def test_different_keys_make_different_jobs(job_client: JobClient, arq_redis: ArqRedis) -> None:
    one = await job_client.enqueue(noop, NoopInput(value=1), idempotency_key="k-1")
    two = await job_client.enqueue(noop, NoopInput(value=1), idempotency_key="k-2")
    plain = await job_client.enqueue(noop, NoopInput(value=1))
    assert len({one.job_id, two.job_id, plain.job_id}) == 3
    assert not (one.replayed or two.replayed or plain.replayed)
    assert await arq_redis.zcard("unit:queue:default") == 3


def test_fingerprint_ignores_key_order() -> None:
    assert fingerprint("t", {"a": 1, "b": {"x": 1, "y": 2}}, None, None) == fingerprint(
        "t", {"b": {"y": 2, "x": 1}, "a": 1}, None, None
    )
    assert fingerprint("t", {}, timedelta(seconds=90), None) == fingerprint("t", {}, 90.0, None)
    assert fingerprint("t", {}, None, None) != fingerprint("u", {}, None, None)
    assert fingerprint("t", [1, 2], None, None) != fingerprint("t", [2, 1], None, None)
    assert fingerprint("t", {}, 60.0, None) != fingerprint("t", {}, 61.0, None)


async def test_the_queue_is_part_of_the_request(job_client: JobClient, arq_redis: ArqRedis) -> None:
    first = await job_client.enqueue(noop, NoopInput(value=1), idempotency_key="q")
    # naming the task's own queue is the same request; another queue is not
    same = await job_client.enqueue(noop, NoopInput(value=1), idempotency_key="q", queue="default")
    assert same.replayed is True and same.job_id == first.job_id
    with pytest.raises(IdempotencyConflictError):
        await job_client.enqueue(noop, NoopInput(value=1), idempotency_key="q", queue="high")
    urgent = await job_client.enqueue(noop, NoopInput(value=1), idempotency_key="q-high", queue="high")
    again = await job_client.enqueue_payload("noop", {"value": 1}, idempotency_key="q-high", queue="high")
    assert again.replayed is True and again.job_id == urgent.job_id
    with pytest.raises(IdempotencyConflictError):
        await job_client.enqueue(noop, NoopInput(value=1), idempotency_key="q-high")
    assert (await arq_redis.zcard("unit:queue:default"), await arq_redis.zcard("unit:queue:high")) == (1, 1)
    # fingerprints stored before queues could be chosen (no queue in them) still match
    assert (
        fingerprint("noop", {"value": 1}, None, None)
        == hashlib.sha256(b'{"delay":null,"input":{"value":1},"run_at":null,"task":"noop"}').hexdigest()
    )
    assert fingerprint("noop", {"value": 1}, None, None, "high") != fingerprint(
        "noop", {"value": 1}, None, None
    )


async def test_the_same_delay_written_differently_is_the_same_request(job_client: JobClient) -> None:
    first = await job_client.enqueue(noop, NoopInput(), delay=60, idempotency_key="delay")
    for same in (60.0, timedelta(minutes=1)):
        again = await job_client.enqueue(noop, NoopInput(), delay=same, idempotency_key="delay")
        assert (again.job_id, again.replayed) == (first.job_id, True)


async def test_the_same_run_at_in_another_offset_is_the_same_request(client: httpx.AsyncClient) -> None:
    when = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)
    first = await post(client, "at", {}, run_at=when.astimezone(timezone(timedelta(hours=2))).isoformat())
    assert first.status_code == 202
    again = await post(client, "at", {}, run_at=when.strftime("%Y-%m-%dT%H:%M:%SZ"))
    assert (again.status_code, again.json()["job_id"]) == (200, first.json()["job_id"])


async def test_the_key_lives_for_idempotency_ttl_s(
    job_client: JobClient, arq_redis: ArqRedis, settings: Settings
) -> None:
    await job_client.enqueue(noop, NoopInput(), idempotency_key="ttl")
    ttl = await arq_redis.pttl(claim_key("ttl"))
    assert settings.idempotency_ttl_s * 1000 - 1_000 <= ttl <= settings.idempotency_ttl_s * 1000


async def test_a_shorter_configured_ttl_is_used(arq_redis: ArqRedis, registry: TaskRegistry) -> None:
    client = JobClient(arq_redis, make_settings(idempotency_ttl_s=90), registry)
    await client.enqueue(noop, NoopInput(), idempotency_key="short")
    assert 89_000 <= await arq_redis.pttl(claim_key("short")) <= 90_000


async def test_concurrent_identical_enqueues_make_one_job(job_client: JobClient, arq_redis: ArqRedis) -> None:
    results = await asyncio.gather(
        *(job_client.enqueue(noop, NoopInput(value="x"), idempotency_key="race") for _ in range(30))
    )
    assert len({r.job_id for r in results}) == 1
    assert sum(not r.replayed for r in results) == 1
    assert await arq_redis.zcard("unit:queue:default") == 1
    assert len(await record_keys(arq_redis)) == 1


class HeldExec:
    """Holds the first `racers` EXECs until all of them arrived (so every racer has read the absent
    Idempotency-Key first), then lets them go; counts the EXECs that lose on WATCH."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, racers: int) -> None:
        self.racers = racers
        self.arrived = 0
        self.lost = 0
        self.all_read = asyncio.Event()
        execute = Pipeline.execute

        async def held_execute(pipe: Pipeline, raise_on_error: bool = True) -> list:
            self.arrived += 1
            if self.arrived == racers:
                self.all_read.set()
            await self.all_read.wait()
            try:
                return await execute(pipe, raise_on_error)
            except WatchError:
                self.lost += 1
                raise

        monkeypatch.setattr(Pipeline, "execute", held_execute)


async def test_requests_racing_past_the_read_lose_on_watch_and_replay(
    job_client: JobClient, arq_redis: ArqRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    held = HeldExec(monkeypatch, racers=10)
    results = await asyncio.wait_for(
        asyncio.gather(
            *(job_client.enqueue(noop, NoopInput(value=7), idempotency_key="held") for _ in range(10))
        ),
        timeout=10,
    )
    assert (held.arrived, held.lost) == (10, 9)  # every EXEC but the winner's failed on WATCH
    assert len({r.job_id for r in results}) == 1
    assert [r.replayed for r in results].count(False) == 1
    assert await arq_redis.zcard("unit:queue:default") == 1
    assert len(await record_keys(arq_redis)) == 1
    assert len([k async for k in arq_redis.scan_iter(match="arq:job:*")]) == 1


# --- HTTP ------------------------------------------------------------------------------------------


async def post(
    client: httpx.AsyncClient, key: str | None, json: object, **params: str | float
) -> httpx.Response:
    headers = {} if key is None else {"Idempotency-Key": key}
    return await client.post("/jobs/noop", json=json, headers=headers, params=params)


async def test_http_first_request_is_202_and_a_replay_is_200(
    client: httpx.AsyncClient, arq_redis: ArqRedis
) -> None:
    first = await post(client, "pay-42", {"value": {"amount": 10}})
    assert first.status_code == 202
    assert "idempotent-replayed" not in first.headers
    job_id = first.json()["job_id"]
    assert first.json()["idempotent_replay"] is False

    again = await post(client, "pay-42", {"value": {"amount": 10}})
    assert again.status_code == 200
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["location"] == f"http://test/jobs/{job_id}"
    assert again.json() == {
        "job_id": job_id,
        "task": "noop",
        "status": "pending",
        "status_url": f"http://test/jobs/{job_id}",
        "scheduled_for": None,
        "retry_of": None,
        "idempotent_replay": True,
    }
    assert await arq_redis.zcard("unit:queue:default") == 1


async def test_http_replay_shows_the_current_status(client: httpx.AsyncClient, arq_redis: ArqRedis) -> None:
    first = await post(client, "now-running", {"value": 1})
    job_id = first.json()["job_id"]
    await arq_redis.set(Keys.arq_in_progress(job_id), b"1")
    again = await post(client, "now-running", {"value": 1})
    assert (again.status_code, again.json()["status"], again.json()["job_id"]) == (200, "running", job_id)


async def test_http_replay_of_a_scheduled_job_shows_its_run_time(client: httpx.AsyncClient) -> None:
    first = await post(client, "later", {}, delay=120)
    assert (first.status_code, first.json()["status"]) == (202, "scheduled")
    again = await post(client, "later", {}, delay=120)
    assert again.status_code == 200
    assert (again.json()["status"], again.json()["scheduled_for"]) == (
        "scheduled",
        first.json()["scheduled_for"],
    )
    other_delay = await post(client, "later", {}, delay=60)
    assert other_delay.status_code == 409


async def test_http_same_key_other_body_is_409(client: httpx.AsyncClient, arq_redis: ArqRedis) -> None:
    first = await post(client, "dup", {"value": 1})
    job_id = first.json()["job_id"]
    conflict = await post(client, "dup", {"value": 2})
    assert conflict.status_code == 409
    assert "idempotent-replayed" not in conflict.headers
    assert conflict.json() == {
        "error": "idempotency_conflict",
        "message": f"Idempotency-Key 'dup' was already used for a different request (task 'noop', job {job_id}); "
        "use a new key for a new request",
        "idempotency_key": "dup",
        "task": "noop",
        "job_id": job_id,
    }
    other_task = await client.post(
        "/jobs/generate_report", json={"rows": 1}, headers={"Idempotency-Key": "dup"}
    )
    assert other_task.status_code == 409
    assert (other_task.json()["task"], other_task.json()["job_id"]) == ("noop", job_id)
    assert await arq_redis.zcard("unit:queue:default") == 1


async def test_http_key_order_in_the_body_does_not_matter(client: httpx.AsyncClient) -> None:
    first = await client.post(
        "/jobs/send_webhook",
        content=b'{"url": "https://h.example/x", "payload": {"a": 1, "b": [1, {"c": 2, "d": 3}]}}',
        headers={"Idempotency-Key": "order", "content-type": "application/json"},
    )
    again = await client.post(
        "/jobs/send_webhook",
        content=b'{"payload": {"b": [1, {"d": 3, "c": 2}], "a": 1}, "url": "https://h.example/x"}',
        headers={"Idempotency-Key": "order", "content-type": "application/json"},
    )
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json()["job_id"] == first.json()["job_id"]


async def test_http_defaults_count_as_given(client: httpx.AsyncClient) -> None:
    first = await client.post("/jobs/generate_report", json={"rows": 5}, headers={"Idempotency-Key": "d"})
    again = await client.post(
        "/jobs/generate_report",
        json={"rows": 5, "seed": 0, "step_delay_s": 0.2},
        headers={"Idempotency-Key": "d"},
    )
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json()["job_id"] == first.json()["job_id"]


async def test_http_different_keys_make_different_jobs(
    client: httpx.AsyncClient, arq_redis: ArqRedis
) -> None:
    one = await post(client, "a", {"value": 1})
    two = await post(client, "b", {"value": 1})
    none = await post(client, None, {"value": 1})
    assert [r.status_code for r in (one, two, none)] == [202, 202, 202]
    assert len({r.json()["job_id"] for r in (one, two, none)}) == 3
    assert await arq_redis.zcard("unit:queue:default") == 3


@pytest.mark.parametrize("key", ["k" * 300, "k" * 256, "has space", "tab\there", ""])
async def test_http_bad_key_is_422(client: httpx.AsyncClient, arq_redis: ArqRedis, key: str) -> None:
    response = await post(client, key, {"value": 1})
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "validation_error"
    assert body["task"] == "noop"
    assert [e["loc"] for e in body["detail"]] == [["header", "Idempotency-Key"]]
    assert await arq_redis.zcard("unit:queue:default") == 0
    assert [k async for k in arq_redis.scan_iter(match="unit:idempotency:*")] == []


@pytest.mark.parametrize("key", ["k" * 255, "a", "!~#$%&'*+-.^_`|", "9f3a5c2e-5e3b-4b1d-8f3e-1a2b3c4d5e6f"])
async def test_http_good_keys_are_accepted(client: httpx.AsyncClient, key: str) -> None:
    first = await post(client, key, {"value": 1})
    again = await post(client, key, {"value": 1})
    assert (first.status_code, again.status_code) == (202, 200)


@pytest.mark.parametrize("all_read_first", [False, True])
async def test_http_50_concurrent_identical_requests_make_one_job(
    client: httpx.AsyncClient, arq_redis: ArqRedis, monkeypatch: pytest.MonkeyPatch, all_read_first: bool
) -> None:
    held = HeldExec(monkeypatch, racers=50) if all_read_first else None
    responses = await asyncio.wait_for(
        asyncio.gather(*(post(client, "burst", {"value": [1, 2, 3]}) for _ in range(50))), timeout=30
    )
    if held is not None:  # all 50 read the key before any wrote it: 49 lost on WATCH
        assert held.lost == 49
    codes = [r.status_code for r in responses]
    assert (codes.count(202), codes.count(200)) == (1, 49)
    job_ids = {r.json()["job_id"] for r in responses}
    assert len(job_ids) == 1
    assert all(r.json()["idempotent_replay"] is (r.status_code == 200) for r in responses)
    assert await record_keys(arq_redis) == [f"unit:job:{job_ids.pop()}".encode()]
    assert await arq_redis.zcard("unit:queue:default") == 1
    assert len([k async for k in arq_redis.scan_iter(match="arq:job:*")]) == 1


async def test_http_idempotency_key_ttl(
    client: httpx.AsyncClient, arq_redis: ArqRedis, settings: Settings
) -> None:
    assert (await post(client, "ttl-key", {})).status_code == 202
    ttl = await arq_redis.pttl(claim_key("ttl-key"))
    assert abs(ttl - settings.idempotency_ttl_s * 1000) <= 1_000


async def test_http_replay_after_the_job_record_expired_is_200_with_null_status(
    client: httpx.AsyncClient, arq_redis: ArqRedis
) -> None:
    first = await post(client, "old", {"value": 1}, delay=60)
    job_id = first.json()["job_id"]
    # the job and its record expired; the key (kept longer) still names the job
    await arq_redis.delete(f"unit:job:{job_id}", Keys.arq_job(job_id))
    await arq_redis.zrem("unit:queue:default", job_id)
    again = await post(client, "old", {"value": 1}, delay=60)
    assert again.status_code == 200
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == {
        "job_id": job_id,
        "task": "noop",
        "status": None,
        "status_url": f"http://test/jobs/{job_id}",
        "scheduled_for": None,
        "retry_of": None,
        "idempotent_replay": True,
    }
    assert await record_keys(arq_redis) == []
    assert (await client.get(f"/jobs/{job_id}")).status_code == 404


async def test_http_replay_of_a_finished_job_shows_it_finished(
    client: httpx.AsyncClient, job_client: JobClient, arq_redis: ArqRedis
) -> None:
    first = await post(client, "then-cancelled", {"value": 1})
    job_id = first.json()["job_id"]
    cancelled = await job_client.cancel(job_id)
    assert cancelled.status is JobState.CANCELLED
    again = await post(client, "then-cancelled", {"value": 1})
    assert (again.status_code, again.json()["status"]) == (200, "cancelled")
    assert await arq_redis.zcard("unit:queue:default") == 0  # the replay did not enqueue again


async def test_a_run_at_far_in_the_past_with_a_key_is_accepted(client: httpx.AsyncClient) -> None:
    # the same request without a key runs now; the key's fingerprint must not overflow
    response = await client.post(
        "/jobs/noop",
        params={"run_at": "0001-01-01T00:00:00+14:00"},
        json={},
        headers={"Idempotency-Key": "ancient"},
    )
    assert response.status_code == 202
    assert response.json()["status"] == "pending"


async def test_two_idempotency_key_headers_are_refused(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/jobs/noop", json={}, headers=[("Idempotency-Key", "k1"), ("Idempotency-Key", "k2")]
    )
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "validation_error" and body["task"] == "noop"
    assert body["detail"] == [
        {
            "loc": ["header", "Idempotency-Key"],
            "msg": "give one Idempotency-Key header",
            "type": "value_error",
        }
    ]
