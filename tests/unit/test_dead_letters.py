from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from arq.connections import ArqRedis

from arq_jobs._client import JobClient
from arq_jobs._clock import now_ms
from arq_jobs._config import Settings
from arq_jobs._deadletters import (
    DeadLetter,
    DeadLetterError,
    DeadLetterStore,
    FailureReason,
    build_dead_letter,
)
from arq_jobs._errors import DeadLetterNotFoundError
from arq_jobs._jobs.records import JobRecord
from arq_jobs._jobs.states import JobState
from arq_jobs._keys import Keys
from arq_jobs._serializer import loads

KEYS = Keys("unit")
ALL = "unit:dead-letters"


def letter(
    job_id: str,
    failed_ms: int,
    *,
    task: str = "noop",
    payload: Any = None,
    record: JobRecord | None = None,
) -> DeadLetter:
    return build_dead_letter(
        job_id,
        record,
        task=task,
        payload={"value": job_id} if payload is None else payload,
        error=DeadLetterError(type="RuntimeError", message=f"{job_id} broke", traceback="Traceback ..."),
        reason=FailureReason.EXHAUSTED,
        attempts=3,
        failed_ms=failed_ms,
        worker="host:1",
    )


async def add(redis: ArqRedis, store: DeadLetterStore, *letters: DeadLetter, now: int | None = None) -> None:
    async with redis.pipeline(transaction=True) as pipe:
        for item in letters:
            store.add(pipe, item, now_ms() if now is None else now)
        await pipe.execute()


def ids(letters: list[DeadLetter]) -> list[str]:
    return [item.job_id for item in letters]


@pytest.fixture
def store(job_client: JobClient) -> DeadLetterStore:
    return job_client.dead_letters


@pytest.fixture
async def five(arq_redis: ArqRedis, store: DeadLetterStore) -> tuple[int, list[str]]:
    """Five letters; job-c and job-d failed in the same millisecond. Returns (base ms, newest first)."""
    base = now_ms() - 60_000
    await add(
        arq_redis,
        store,
        letter("job-a", base + 1_000),
        letter("job-b", base + 2_000, task="send_webhook"),
        letter("job-c", base + 3_000),
        letter("job-d", base + 3_000, task="send_webhook"),
        letter("job-e", base + 4_000),
    )
    # same millisecond: ZREVRANGEBYSCORE orders them by member, descending
    return base, ["job-e", "job-d", "job-c", "job-b", "job-a"]


async def walk(store: DeadLetterStore, limit: int, task: str | None = None) -> list[list[str]]:
    pages: list[list[str]] = []
    cursor = None
    while True:
        page = await store.page(limit=limit, cursor=cursor, task=task, now_ms=now_ms())
        pages.append(ids(page.items))
        if page.next_cursor is None:
            return pages
        assert len(page.items) == limit
        cursor = page.next_cursor
        assert len(pages) < 20, "paging does not end"


# --- the store -------------------------------------------------------------------------------------


async def test_add_writes_the_letter_and_both_indexes(
    arq_redis: ArqRedis, store: DeadLetterStore, settings: Any
) -> None:
    failed = now_ms() - 5_000
    item = letter("job-x", failed, task="send_webhook", payload={"url": "http://t.example/", "payload": 1})
    await add(arq_redis, store, item)
    raw = await arq_redis.get("unit:dead:job-x")
    assert raw is not None and DeadLetter.model_validate_json(raw) == item
    assert await arq_redis.zscore(ALL, "job-x") == failed
    assert await arq_redis.zscore("unit:dead-letters:task:send_webhook", "job-x") == failed
    assert await arq_redis.zscore("unit:dead-letters:task:noop", "job-x") is None
    ttl = await arq_redis.pttl("unit:dead:job-x")
    assert settings.dead_letter_ttl_s * 1000 - 2_000 < ttl <= settings.dead_letter_ttl_s * 1000
    got = await store.get("job-x")
    assert got == item
    assert got.failed_at == datetime.fromtimestamp(failed / 1000, tz=UTC)
    assert (got.reason, got.attempts, got.worker, got.queue, got.max_attempts) == (
        "attempts_exhausted", 3, "host:1", None, None
    )  # fmt: skip


async def test_add_leaves_the_jobs_record_alone(
    arq_redis: ArqRedis, store: DeadLetterStore, job_client: JobClient
) -> None:
    """The store writes only its own keys; flagging the record (`dead_lettered`) is the worker's job,
    done only when the record exists."""
    job = await job_client.enqueue_payload("noop", {"value": 1})
    record_key = f"unit:job:{job.job_id}"
    ttl_before = await arq_redis.pttl(record_key)
    raw = await arq_redis.hgetall(record_key)
    record = JobRecord.from_hash(raw)
    assert record is not None
    item = letter(job.job_id, now_ms(), record=record)
    assert (item.queue, item.max_attempts, item.enqueued_at is not None) == ("default", 3, True)
    await add(arq_redis, store, item)
    assert await arq_redis.hgetall(record_key) == raw
    assert 0 <= ttl_before - await arq_redis.pttl(record_key) < 2_000


async def test_add_for_a_job_without_a_record_leaves_no_immortal_key(
    arq_redis: ArqRedis, store: DeadLetterStore
) -> None:
    await add(arq_redis, store, letter("expired-job", now_ms()))
    assert await arq_redis.exists("unit:job:expired-job") == 0
    assert sorted([key async for key in arq_redis.scan_iter()]) == [
        b"unit:dead-letters", b"unit:dead-letters:task:noop", b"unit:dead:expired-job"
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("limit", "pages"),
    [
        (1, [["job-e"], ["job-d"], ["job-c"], ["job-b"], ["job-a"]]),
        (2, [["job-e", "job-d"], ["job-c", "job-b"], ["job-a"]]),
        (3, [["job-e", "job-d", "job-c"], ["job-b", "job-a"]]),
        (4, [["job-e", "job-d", "job-c", "job-b"], ["job-a"]]),
        (5, [["job-e", "job-d", "job-c", "job-b", "job-a"]]),
        (50, [["job-e", "job-d", "job-c", "job-b", "job-a"]]),
    ],
)
async def test_pages_newest_first_without_gaps_or_repeats(
    store: DeadLetterStore, five: tuple[int, list[str]], limit: int, pages: list[list[str]]
) -> None:
    walked = await walk(store, limit)
    assert walked == pages
    flat = [job_id for page in walked for job_id in page]
    assert flat == five[1] and len(set(flat)) == 5


async def test_cursor_names_the_last_item_and_splits_a_shared_millisecond(
    store: DeadLetterStore, five: tuple[int, list[str]]
) -> None:
    base = five[0]
    first = await store.page(limit=2, cursor=None, task=None, now_ms=now_ms())
    assert ids(first.items) == ["job-e", "job-d"]
    assert first.next_cursor == f"{base + 3_000}:job-d"
    second = await store.page(limit=2, cursor=first.next_cursor, task=None, now_ms=now_ms())
    assert ids(second.items) == ["job-c", "job-b"]  # job-c shares job-d's millisecond
    assert second.next_cursor == f"{base + 2_000}:job-b"
    last = await store.page(limit=2, cursor=second.next_cursor, task=None, now_ms=now_ms())
    assert (ids(last.items), last.next_cursor) == (["job-a"], None)
    beyond = await store.page(limit=2, cursor=f"{base + 1_000}:job-a", task=None, now_ms=now_ms())
    assert (beyond.items, beyond.next_cursor) == ([], None)


async def test_letters_arriving_between_pages_are_not_repeated_or_skipped(
    arq_redis: ArqRedis, store: DeadLetterStore, five: tuple[int, list[str]]
) -> None:
    base = five[0]
    first = await store.page(limit=2, cursor=None, task=None, now_ms=now_ms())
    assert ids(first.items) == ["job-e", "job-d"]
    # newer than everything: belongs before the cursor; same ms as job-d, ordered after it: next page
    await add(arq_redis, store, letter("job-z", base + 9_000), letter("job-cc", base + 3_000))
    rest = await store.page(limit=10, cursor=first.next_cursor, task=None, now_ms=now_ms())
    assert ids(rest.items) == ["job-cc", "job-c", "job-b", "job-a"]


async def test_a_cursor_whose_letter_was_deleted_still_works(
    store: DeadLetterStore, five: tuple[int, list[str]]
) -> None:
    first = await store.page(limit=2, cursor=None, task=None, now_ms=now_ms())
    await store.delete("job-d")
    second = await store.page(limit=2, cursor=first.next_cursor, task=None, now_ms=now_ms())
    assert ids(second.items) == ["job-c", "job-b"]


async def test_task_filter_uses_the_task_index(store: DeadLetterStore, five: tuple[int, list[str]]) -> None:
    assert await walk(store, 2, task="send_webhook") == [["job-d", "job-b"]]
    assert await walk(store, 1, task="noop") == [["job-e"], ["job-c"], ["job-a"]]
    assert await walk(store, 2, task="generate_report") == [[]]
    assert await walk(store, 2, task="no_such_task") == [[]]


async def test_empty_store_has_an_empty_page(store: DeadLetterStore) -> None:
    page = await store.page(limit=10, cursor=None, task=None, now_ms=now_ms())
    assert (page.items, page.next_cursor) == ([], None)


async def test_delete_removes_the_letter_and_both_index_entries(
    arq_redis: ArqRedis, store: DeadLetterStore, five: tuple[int, list[str]]
) -> None:
    await store.delete("job-b")
    assert await arq_redis.exists("unit:dead:job-b") == 0
    assert await arq_redis.zscore(ALL, "job-b") is None
    assert await arq_redis.zscore("unit:dead-letters:task:send_webhook", "job-b") is None
    assert await arq_redis.zcard(ALL) == 4
    assert await arq_redis.zrange("unit:dead-letters:task:send_webhook", 0, -1) == [b"job-d"]
    assert await walk(store, 10) == [["job-e", "job-d", "job-c", "job-a"]]
    with pytest.raises(DeadLetterNotFoundError):
        await store.delete("job-b")


async def test_get_of_an_unknown_id_is_not_found(arq_redis: ArqRedis, store: DeadLetterStore) -> None:
    with pytest.raises(DeadLetterNotFoundError) as missing:
        await store.get("nope")
    assert missing.value.details() == {"job_id": "nope"}
    assert str(missing.value) == "no dead letter for job id 'nope' (unknown, deleted, retried or expired)"
    await arq_redis.set("unit:dead:broken", b"{not json")
    with pytest.raises(DeadLetterNotFoundError):
        await store.get("broken")


async def test_entries_older_than_the_retention_are_trimmed(arq_redis: ArqRedis) -> None:
    store = DeadLetterStore(arq_redis, KEYS, retention_s=60)
    now = now_ms()
    old = letter("old", now - 100_000)
    await add(arq_redis, store, old, now=now - 100_000)  # stored back when it was recent
    await add(arq_redis, store, letter("edge", now - 59_000, task="send_webhook"), now=now - 59_000)
    assert await arq_redis.zcard(ALL) == 2
    assert await arq_redis.zcard("unit:dead-letters:task:noop") == 1

    # adding a new letter trims both indexes it writes to
    await add(arq_redis, store, letter("new", now), now=now)
    assert await arq_redis.zrange(ALL, 0, -1) == [b"edge", b"new"]
    assert await arq_redis.zrange("unit:dead-letters:task:noop", 0, -1) == [b"new"]
    page = await store.page(limit=10, cursor=None, task=None, now_ms=now)
    assert ids(page.items) == ["new", "edge"]


async def test_listing_trims_the_index_it_reads(arq_redis: ArqRedis) -> None:
    store = DeadLetterStore(arq_redis, KEYS, retention_s=60)
    now = now_ms()
    await add(arq_redis, store, letter("a", now - 90_000), letter("b", now - 30_000), now=now - 90_000)
    assert await arq_redis.zcard(ALL) == 2
    page = await store.page(limit=10, cursor=None, task=None, now_ms=now)
    assert (ids(page.items), page.next_cursor) == (["b"], None)
    assert await arq_redis.zrange(ALL, 0, -1) == [b"b"]
    task_page = await store.page(limit=10, cursor=None, task="noop", now_ms=now)
    assert ids(task_page.items) == ["b"]
    assert await arq_redis.zrange("unit:dead-letters:task:noop", 0, -1) == [b"b"]


@pytest.mark.parametrize(
    ("limit", "pages"),
    [(1, [["job-e"], ["job-a"]]), (2, [["job-e", "job-a"]]), (3, [["job-e", "job-a"]])],
)
async def test_an_index_entry_whose_letter_vanished_is_skipped_and_dropped(
    arq_redis: ArqRedis,
    store: DeadLetterStore,
    five: tuple[int, list[str]],
    limit: int,
    pages: list[list[str]],
) -> None:
    await arq_redis.delete("unit:dead:job-d", "unit:dead:job-b")  # expired, or deleted by hand
    await arq_redis.set("unit:dead:job-c", b"garbage")  # unreadable counts as gone too
    assert await walk(store, limit) == pages
    assert await arq_redis.zrange(ALL, 0, -1) == [b"job-a", b"job-e"]
    # the per-task index is only cleaned when it is the one listed
    assert await arq_redis.zcard("unit:dead-letters:task:send_webhook") == 2
    assert await walk(store, 5, task="send_webhook") == [[]]
    assert await arq_redis.zcard("unit:dead-letters:task:send_webhook") == 0


async def test_many_vanished_entries_do_not_end_a_page_early(
    arq_redis: ArqRedis, store: DeadLetterStore
) -> None:
    base = now_ms() - 60_000
    await add(arq_redis, store, *(letter(f"job-{n:02d}", base + n) for n in range(20)))
    await arq_redis.delete(*(f"unit:dead:job-{n:02d}" for n in range(3, 17)))
    page = await store.page(limit=3, cursor=None, task=None, now_ms=now_ms())
    assert ids(page.items) == ["job-19", "job-18", "job-17"]
    assert page.next_cursor == f"{base + 17}:job-17"
    rest = await store.page(limit=3, cursor=page.next_cursor, task=None, now_ms=now_ms())
    assert (ids(rest.items), rest.next_cursor) == (["job-02", "job-01", "job-00"], None)
    assert await arq_redis.zcard(ALL) == 6


# --- the HTTP API ----------------------------------------------------------------------------------


async def test_list_get_and_delete_over_http(
    client: httpx.AsyncClient, arq_redis: ArqRedis, store: DeadLetterStore, five: tuple[int, list[str]]
) -> None:
    base = five[0]
    response = await client.get("/dead-letters", params={"limit": 2})
    assert response.status_code == 200
    body = response.json()
    assert [item["job_id"] for item in body["items"]] == ["job-e", "job-d"]
    assert body["next_cursor"] == f"{base + 3_000}:job-d"
    seen = [item["job_id"] for item in body["items"]]
    while body["next_cursor"] is not None:
        body = (await client.get("/dead-letters", params={"limit": 2, "cursor": body["next_cursor"]})).json()
        seen += [item["job_id"] for item in body["items"]]
    assert seen == five[1]

    by_task = (await client.get("/dead-letters", params={"task": "send_webhook"})).json()
    assert ([item["job_id"] for item in by_task["items"]], by_task["next_cursor"]) == (
        ["job-d", "job-b"],
        None,
    )

    one = await client.get("/dead-letters/job-b")
    assert one.status_code == 200
    assert one.json() == (await store.get("job-b")).model_dump(mode="json")
    assert one.json()["error"] == {
        "type": "RuntimeError",
        "message": "job-b broke",
        "traceback": "Traceback ...",
    }
    assert (one.json()["task"], one.json()["input"]) == ("send_webhook", {"value": "job-b"})

    deleted = await client.delete("/dead-letters/job-b")
    assert (deleted.status_code, deleted.content) == (204, b"")
    assert await arq_redis.exists("unit:dead:job-b") == 0
    assert await arq_redis.zscore("unit:dead-letters:task:send_webhook", "job-b") is None
    for response in (await client.get("/dead-letters/job-b"), await client.delete("/dead-letters/job-b")):
        assert response.status_code == 404
        assert response.json() == {
            "error": "dead_letter_not_found",
            "message": "no dead letter for job id 'job-b' (unknown, deleted, retried or expired)",
            "job_id": "job-b",
        }
    assert [i["job_id"] for i in (await client.get("/dead-letters")).json()["items"]] == [
        "job-e", "job-d", "job-c", "job-a"
    ]  # fmt: skip


async def test_empty_list_over_http(client: httpx.AsyncClient) -> None:
    response = await client.get("/dead-letters")
    assert (response.status_code, response.json()) == (200, {"items": [], "next_cursor": None})


@pytest.mark.parametrize(
    ("params", "loc"),
    [
        ({"cursor": "abc"}, ["query", "cursor"]),
        ({"cursor": "123"}, ["query", "cursor"]),
        ({"cursor": "123:"}, ["query", "cursor"]),
        ({"cursor": ":job-a"}, ["query", "cursor"]),
        ({"cursor": "-5:job-a"}, ["query", "cursor"]),
        ({"cursor": "12345678901234567:job-a"}, ["query", "cursor"]),
        ({"limit": 0}, ["query", "limit"]),
        ({"limit": -1}, ["query", "limit"]),
        ({"limit": 501}, ["query", "limit"]),
        ({"limit": "ten"}, ["query", "limit"]),
    ],
)
async def test_invalid_cursor_or_limit_is_422(
    client: httpx.AsyncClient, params: dict, loc: list[str]
) -> None:
    response = await client.get("/dead-letters", params=params)
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "validation_error"
    assert [e["loc"] for e in body["detail"]] == [loc]
    assert body["message"].startswith(f"invalid request: {'.'.join(loc)}: ")


async def test_limit_bounds_are_accepted(client: httpx.AsyncClient, five: tuple[int, list[str]]) -> None:
    assert len((await client.get("/dead-letters", params={"limit": 1})).json()["items"]) == 1
    assert len((await client.get("/dead-letters", params={"limit": 500})).json()["items"]) == 5


async def test_retry_enqueues_a_new_job_and_removes_the_letter(
    client: httpx.AsyncClient, arq_redis: ArqRedis, store: DeadLetterStore
) -> None:
    await add(
        arq_redis, store, letter("old-job", now_ms() - 1_000, task="generate_report", payload={"rows": 7})
    )
    response = await client.post("/dead-letters/old-job/retry")
    assert response.status_code == 202
    body = response.json()
    new_id = body["job_id"]
    assert new_id != "old-job" and len(new_id) == 32
    assert body == {
        "job_id": new_id,
        "task": "generate_report",
        "status": "pending",
        "status_url": f"http://test/jobs/{new_id}",
        "scheduled_for": None,
        "retry_of": "old-job",
        "idempotent_replay": False,
    }
    assert response.headers["location"] == body["status_url"]

    status = await client.get(f"/jobs/{new_id}")
    assert status.status_code == 200
    assert (status.json()["status"], status.json()["retry_of"], status.json()["task"]) == (
        "pending", "old-job", "generate_report"
    )  # fmt: skip
    stored = await arq_redis.get(Keys.arq_job(new_id))
    assert stored is not None
    assert loads(stored)["a"] == [{"rows": 7, "seed": 0, "step_delay_s": 0.2}]  # validated again
    assert await arq_redis.zscore("unit:queue:default", new_id) is not None
    assert await arq_redis.hget(f"unit:job:{new_id}", "retry_of") == b"old-job"

    gone = await client.get("/dead-letters/old-job")
    assert gone.status_code == 404 and gone.json()["error"] == "dead_letter_not_found"
    assert await arq_redis.zcard(ALL) == 0
    assert await arq_redis.zcard("unit:dead-letters:task:generate_report") == 0
    again = await client.post("/dead-letters/old-job/retry")
    assert again.status_code == 404
    assert await arq_redis.zcard("unit:queue:default") == 1


async def test_retry_of_an_unknown_letter_is_404(client: httpx.AsyncClient, arq_redis: ArqRedis) -> None:
    response = await client.post("/dead-letters/nope/retry")
    assert response.status_code == 404
    assert response.json() == {
        "error": "dead_letter_not_found",
        "message": "no dead letter for job id 'nope' (unknown, deleted, retried or expired)",
        "job_id": "nope",
    }
    assert await arq_redis.zcard("unit:queue:default") == 0


async def test_retry_with_input_that_no_longer_validates_is_422_and_keeps_the_letter(
    client: httpx.AsyncClient, arq_redis: ArqRedis, store: DeadLetterStore
) -> None:
    stale = letter("stale", now_ms() - 1_000, task="generate_report", payload={"rows": 0})
    await add(arq_redis, store, stale)
    response = await client.post("/dead-letters/stale/retry")
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "invalid_input"
    assert body["task"] == "generate_report"
    assert body["message"] == (
        "invalid input for task 'generate_report': rows: Input should be greater than or equal to 1"
    )
    assert [e["loc"] for e in body["detail"]] == [["rows"]]
    assert await store.get("stale") == stale
    assert await arq_redis.zscore(ALL, "stale") is not None
    assert await arq_redis.zcard("unit:queue:default") == 0
    assert (await client.get("/dead-letters/stale")).status_code == 200


async def test_retry_of_a_letter_whose_task_is_gone_is_404_and_keeps_the_letter(
    client: httpx.AsyncClient, arq_redis: ArqRedis, store: DeadLetterStore
) -> None:
    await add(arq_redis, store, letter("orphan", now_ms(), task="resize_image", payload={"w": 1}))
    response = await client.post("/dead-letters/orphan/retry")
    assert response.status_code == 404
    assert response.json() == {
        "error": "unknown_task",
        "message": "no task named 'resize_image' is registered",
        "task": "resize_image",
    }
    assert (await client.get("/dead-letters/orphan")).status_code == 200


async def test_concurrent_retries_make_one_job(
    client: httpx.AsyncClient, arq_redis: ArqRedis, store: DeadLetterStore
) -> None:
    await add(arq_redis, store, letter("twice", now_ms(), payload={"value": [1, 2]}))
    responses = await asyncio.gather(*(client.post("/dead-letters/twice/retry") for _ in range(5)))
    assert sorted(r.status_code for r in responses) == [202, 404, 404, 404, 404]
    assert await arq_redis.zcard("unit:queue:default") == 1
    assert (await store.page(limit=10, cursor=None, task=None, now_ms=now_ms())).items == []


async def test_retried_job_status_through_job_client(
    job_client: JobClient, arq_redis: ArqRedis, store: DeadLetterStore
) -> None:
    await add(arq_redis, store, letter("first", now_ms(), payload={"value": "x"}))
    job = await job_client.retry_dead_letter("first")
    assert (job.task, job.status, job.retry_of, job.replayed) == ("noop", JobState.PENDING, "first", False)
    status = await job_client.status(job.job_id)
    assert (status.status, status.retry_of, status.dead_lettered) == (JobState.PENDING, "first", False)
    with pytest.raises(DeadLetterNotFoundError):
        await job_client.retry_dead_letter("first")


async def test_indexes_expire_with_the_retention_after_their_last_entry(
    arq_redis: ArqRedis, store: DeadLetterStore, settings: Settings
) -> None:
    await add(arq_redis, store, letter("job-x", now_ms()))
    retention_ms = settings.dead_letter_ttl_s * 1000
    for index in ("unit:dead-letters", "unit:dead-letters:task:noop"):
        assert retention_ms - 5_000 < await arq_redis.pttl(index) <= retention_ms


def on_queue(queue: str) -> JobRecord:
    return JobRecord(
        task="noop", queue=queue, enqueued_ms=now_ms() - 5_000, scheduled_ms=None, max_attempts=3
    )


async def test_a_retried_dead_letter_goes_back_to_the_queue_its_job_was_on(
    client: httpx.AsyncClient, job_client: JobClient, arq_redis: ArqRedis, store: DeadLetterStore
) -> None:
    await add(arq_redis, store, letter("urgent", now_ms(), record=on_queue("high")))
    job = await job_client.retry_dead_letter("urgent")
    assert await arq_redis.zscore("unit:queue:high", job.job_id) is not None
    assert (await job_client.status(job.job_id)).queue == "high"
    assert await arq_redis.zcard("unit:queue:default") == 0

    await add(arq_redis, store, letter("retired", now_ms(), record=on_queue("nightly")))
    response = await client.post("/dead-letters/retired/retry")
    assert response.status_code == 422
    assert response.json() == {
        "error": "unknown_queue",
        "message": "no queue named 'nightly' is configured; the queues are high, default, low",
        "queue": "nightly",
        "queues": ["high", "default", "low"],
        "task": "noop",
    }
    assert (await client.get("/dead-letters/retired")).status_code == 200  # kept


async def test_an_owners_page_walks_that_owners_index_only(
    arq_redis: ArqRedis, store: DeadLetterStore
) -> None:
    now = now_ms()
    owned = [
        letter(f"job-{owner}-{n}", now - 1000 + n, task=task).model_copy(update={"owner": owner})
        for n, (owner, task) in enumerate(
            [("a", "noop"), ("b", "noop"), ("a", "send_webhook"), (None, "noop")]
        )
    ]
    await add(arq_redis, store, *owned, now=now)
    assert await arq_redis.zrange("unit:dead-letters:owner:a", 0, -1) == [b"job-a-0", b"job-a-2"]
    mine = await store.page(limit=10, cursor=None, task=None, now_ms=now, owner="a")
    assert (ids(mine.items), mine.next_cursor) == (["job-a-2", "job-a-0"], None)
    one_task = await store.page(limit=10, cursor=None, task="noop", now_ms=now, owner="a")
    assert ids(one_task.items) == ["job-a-0"]
    first = await store.page(limit=1, cursor=None, task=None, now_ms=now, owner="a")
    assert (
        ids(first.items) == ["job-a-2"] and first.next_cursor is not None and "job-a-2" in first.next_cursor
    )
