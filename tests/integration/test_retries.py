"""Retries, backoff and dead letters, end to end: real API, real worker, real webhook target."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import datetime

import httpx

from arq_jobs._tasks.retry import RetryPolicy
from workers.tasks.webhooks import WEBHOOK_RETRY

from .conftest import Service, WebhookTarget, terminal, wait_for_status

# a wait between attempts is the jittered backoff plus at most a poll (20 ms here) and request time
SLACK_S = 0.5


async def test_webhook_retried_on_503_until_it_succeeds(
    http: httpx.AsyncClient, worker: Service, webhook_target: WebhookTarget
) -> None:
    path = f"/sequence/503,503,200/{uuid.uuid4().hex}"
    accepted = await http.post("/jobs/send_webhook", json={"url": webhook_target.url + path, "payload": {}})
    assert accepted.status_code == 202
    done = await wait_for_status(http, accepted.json()["status_url"], terminal)
    assert (done["status"], done["attempt"], done["max_attempts"]) == ("succeeded", 3, 5)
    assert done["result"]["status_code"] == 200
    assert (done["error"], done["dead_lettered"], done["next_attempt_at"]) == (None, False, None)
    arrivals = [r.at for r in webhook_target.by_path(path)]
    assert len(arrivals) == 3
    policy: RetryPolicy = WEBHOOK_RETRY
    for attempt, (before, after) in enumerate(zip(arrivals, arrivals[1:], strict=False), start=1):
        wait = after - before
        assert 0 <= wait <= policy.ceiling_s(attempt) + SLACK_S, (attempt, wait)


async def test_retrying_shows_next_attempt_and_last_error_and_honours_retry_after(
    http: httpx.AsyncClient, worker: Service, webhook_target: WebhookTarget
) -> None:
    path = f"/sequence/503+2,200/{uuid.uuid4().hex}"
    url = webhook_target.url + path
    accepted = await http.post("/jobs/send_webhook", json={"url": url, "payload": {}})
    status_url = accepted.json()["status_url"]
    waiting = await wait_for_status(http, status_url, lambda b: b["status"] == "retrying", timeout_s=5)
    assert (waiting["attempt"], waiting["max_attempts"], waiting["is_terminal"]) == (1, 5, False)
    assert waiting["error"] == {
        "type": "WebhookUnavailableError",
        "message": f"webhook target {url} answered HTTP 503",
    }
    first = webhook_target.by_path(path)[0].at
    next_at = datetime.fromisoformat(waiting["next_attempt_at"]).timestamp()
    # Retry-After: 2 is honoured exactly (not jittered): next attempt ~2 s after the failure
    assert 1.8 <= next_at - time.time() + (time.monotonic() - first) <= 2.5
    done = await wait_for_status(http, status_url, terminal, timeout_s=10)
    assert (done["status"], done["attempt"]) == ("succeeded", 2)
    arrivals = [r.at for r in webhook_target.by_path(path)]
    assert 2.0 <= arrivals[1] - arrivals[0] <= 2.0 + SLACK_S


async def test_rejected_webhook_is_dead_lettered_then_retried_after_the_fix(
    http: httpx.AsyncClient, worker: Service, webhook_target: WebhookTarget
) -> None:
    tag = uuid.uuid4().hex
    url = f"{webhook_target.url}/switch/{tag}"
    accepted = await http.post("/jobs/send_webhook", json={"url": url, "payload": {"order": 7}})
    job_id = accepted.json()["job_id"]
    done = await wait_for_status(http, accepted.json()["status_url"], terminal)
    assert (done["status"], done["attempt"], done["dead_lettered"]) == ("failed", 1, True)
    assert done["error"] == {
        "type": "WebhookRejectedError",
        "message": f"webhook target {url} answered HTTP 400",
    }
    await asyncio.sleep(0.5)
    assert len(webhook_target.by_path(f"/switch/{tag}")) == 1  # 400 is not retried

    letter = (await http.get(f"/dead-letters/{job_id}")).json()
    assert (letter["job_id"], letter["task"], letter["queue"]) == (job_id, "send_webhook", "default")
    assert letter["input"] == {"url": url, "payload": {"order": 7}, "headers": {}}
    assert (letter["reason"], letter["attempts"], letter["max_attempts"]) == ("permanent_error", 1, 5)
    assert letter["error"]["type"] == "WebhookRejectedError"
    assert letter["error"]["traceback"].rstrip().endswith("answered HTTP 400")
    assert letter["worker"].count(":") == 2 and letter["failed_at"] and letter["started_at"]
    listed = (await http.get("/dead-letters", params={"task": "send_webhook", "limit": 500})).json()
    assert job_id in [item["job_id"] for item in listed["items"]]

    webhook_target.switches[tag] = 204  # the target is fixed
    retried = await http.post(f"/dead-letters/{job_id}/retry")
    assert retried.status_code == 202
    new = retried.json()
    assert new["job_id"] != job_id and new["retry_of"] == job_id and new["status"] == "pending"
    assert retried.headers["location"] == new["status_url"]
    finished = await wait_for_status(http, new["status_url"], terminal)
    assert (finished["status"], finished["attempt"], finished["retry_of"]) == ("succeeded", 1, job_id)
    assert finished["result"]["status_code"] == 204
    assert (await http.get(f"/dead-letters/{job_id}")).status_code == 404
    again = await http.post(f"/dead-letters/{job_id}/retry")
    assert again.status_code == 404 and again.json()["error"] == "dead_letter_not_found"
    old = (await http.get(f"/jobs/{job_id}")).json()
    assert (old["status"], old["dead_lettered"]) == ("failed", True)


async def test_dead_letters_page_newest_first_and_delete(
    http: httpx.AsyncClient, worker: Service, webhook_target: WebhookTarget
) -> None:
    tag = uuid.uuid4().hex
    ids = []
    for n in range(3):
        url = f"{webhook_target.url}/status/404?{tag}-{n}"
        accepted = await http.post("/jobs/send_webhook", json={"url": url, "payload": {"n": n}})
        await wait_for_status(http, accepted.json()["status_url"], terminal)
        ids.append(accepted.json()["job_id"])
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"task": "send_webhook", "limit": 1}
        if cursor:
            params["cursor"] = cursor
        page = (await http.get("/dead-letters", params=params)).json()
        seen += [item["job_id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen))
    assert [i for i in seen if i in ids] == ids[::-1]  # newest first, each once
    assert (await http.delete(f"/dead-letters/{ids[0]}")).status_code == 204
    assert (await http.delete(f"/dead-letters/{ids[0]}")).status_code == 404
    listed = (await http.get("/dead-letters", params={"limit": 500})).json()["items"]
    assert [i["job_id"] for i in listed if i["job_id"] in ids] == [ids[2], ids[1]]
