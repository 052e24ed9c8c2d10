"""Idempotency-Key on POST /jobs/{task} against the real API and Redis."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import redis


def records(redis_client: redis.Redis, prefix: str) -> set[bytes]:
    return set(redis_client.scan_iter(match=f"{prefix}:job:*", count=1000))


async def test_fifty_concurrent_identical_posts_make_one_job(
    http: httpx.AsyncClient, redis_client: redis.Redis, key_prefix: str
) -> None:
    key = f"order-{uuid.uuid4().hex}"
    before = records(redis_client, key_prefix)
    # scheduled an hour ahead so the job stays put while we count
    responses = await asyncio.gather(
        *(
            http.post(
                "/jobs/noop",
                params={"delay": 3600},
                json={"value": {"n": 1}},
                headers={"Idempotency-Key": key},
            )
            for _ in range(50)
        )
    )
    codes = sorted(r.status_code for r in responses)
    assert codes == [200] * 49 + [202]
    ids = {r.json()["job_id"] for r in responses}
    assert len(ids) == 1
    (job_id,) = ids
    created = records(redis_client, key_prefix) - before
    assert created == {f"{key_prefix}:job:{job_id}".encode()}
    replays = [r for r in responses if r.status_code == 200]
    assert all(r.json()["idempotent_replay"] and r.json()["status"] == "scheduled" for r in replays)
    assert all(r.headers["idempotent-replayed"] == "true" for r in replays)

    other = await http.post(
        "/jobs/noop", params={"delay": 3600}, json={"value": {"n": 2}}, headers={"Idempotency-Key": key}
    )
    assert other.status_code == 409
    assert other.json() == {
        "error": "idempotency_conflict",
        "message": f"Idempotency-Key {key!r} was already used for a different request (task 'noop', "
        f"job {job_id}); use a new key for a new request",
        "idempotency_key": key,
        "task": "noop",
        "job_id": job_id,
    }
    assert records(redis_client, key_prefix) - before == created
    assert (await http.delete(f"/jobs/{job_id}")).status_code == 200  # tidy up


async def test_replay_reports_the_current_status(http: httpx.AsyncClient, worker: object) -> None:
    key = uuid.uuid4().hex
    first = await http.post("/jobs/noop", json={"value": 5}, headers={"Idempotency-Key": key})
    assert first.status_code == 202
    for _ in range(100):
        replay = await http.post("/jobs/noop", json={"value": 5}, headers={"Idempotency-Key": key})
        assert replay.status_code == 200
        if replay.json()["status"] == "succeeded":
            break
        await asyncio.sleep(0.05)
    assert replay.json()["job_id"] == first.json()["job_id"]
    assert replay.json()["status"] == "succeeded"
