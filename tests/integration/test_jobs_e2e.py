"""Every shipped task end to end: HTTP enqueue -> real worker -> poll the status URL."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta

import httpx
import orjson
import redis

from .conftest import ARQ, ROOT, Service, WebhookTarget, service_env, terminal, wait_for_status


def at(timestamp: str) -> datetime:
    return datetime.fromisoformat(timestamp)


async def test_noop_returns_its_input(http: httpx.AsyncClient, worker: Service) -> None:
    accepted = await http.post("/jobs/noop", json={"value": {"n": 1, "tags": ["a", "b"]}})
    assert accepted.status_code == 202
    assert accepted.headers["location"] == accepted.json()["status_url"]
    done = await wait_for_status(http, accepted.json()["status_url"], terminal)
    assert done["status"] == "succeeded"
    assert done["result"] == {"value": {"n": 1, "tags": ["a", "b"]}}
    assert (done["attempt"], done["error"], done["task"], done["queue"]) == (1, None, "noop", "default")
    assert at(done["enqueued_at"]) <= at(done["started_at"]) <= at(done["finished_at"])


async def test_report_shows_progress_while_running(http: httpx.AsyncClient, worker: Service) -> None:
    accepted = await http.post("/jobs/generate_report", json={"rows": 20_000, "seed": 5, "step_delay_s": 0.4})
    url = accepted.json()["status_url"]
    seen: list[tuple[str, int | None]] = []

    def record(body: dict) -> bool:
        progress = body["progress"]
        seen.append((body["status"], progress["step"] if progress else None))
        return terminal(body)

    done = await wait_for_status(http, url, record)
    running_steps = {step for status, step in seen if status == "running" and step is not None}
    assert running_steps & {1, 2, 3}, f"no progress seen while running: {seen}"
    assert done["status"] == "succeeded"
    assert done["progress"]["step"] == 4 and done["progress"]["percent"] == 100.0
    assert done["result"]["rows"] == 20_000
    report = await http.get(f"/reports/{done['result']['report_id']}")
    assert report.status_code == 200
    assert report.json()["rows"] == 20_000
    assert sum(r["count"] for r in report.json()["regions"].values()) == 20_000


async def test_report_example_route(http: httpx.AsyncClient, worker: Service) -> None:
    accepted = await http.post("/reports", json={"rows": 500})
    assert accepted.status_code == 202
    body = accepted.json()
    await wait_for_status(http, body["status_url"], terminal)
    report = await http.get(body["report_url"])
    assert report.status_code == 200 and report.json()["report_id"] == body["report_id"]


async def test_webhook_is_delivered(
    http: httpx.AsyncClient, worker: Service, webhook_target: WebhookTarget
) -> None:
    url = f"{webhook_target.url}/hooks/order-created"
    payload = {"order_id": 42, "lines": [{"sku": "A1", "qty": 2}]}
    accepted = await http.post(
        "/jobs/send_webhook", json={"url": url, "payload": payload, "headers": {"x-signature": "s1"}}
    )
    done = await wait_for_status(http, accepted.json()["status_url"], terminal)
    assert done["status"] == "succeeded"
    assert done["result"]["status_code"] == 200
    assert done["result"]["elapsed_ms"] > 0
    received = webhook_target.by_path("/hooks/order-created")
    assert len(received) == 1
    assert received[0].body == payload
    assert received[0].headers["x-signature"] == "s1"


async def test_failing_job_ends_failed_with_its_error(
    http: httpx.AsyncClient, worker: Service, webhook_target: WebhookTarget, redis_client: redis.Redis
) -> None:
    url = f"{webhook_target.url}/status/410"
    accepted = await http.post("/jobs/send_webhook", json={"url": url, "payload": {"x": 1}})
    done = await wait_for_status(http, accepted.json()["status_url"], terminal)
    assert done["status"] == "failed"
    assert done["result"] is None
    assert done["error"] == {
        "type": "WebhookRejectedError",
        "message": f"webhook target {url} answered HTTP 410",
    }
    stored = redis_client.get(f"arq:result:{done['job_id']}")
    assert isinstance(stored, bytes)
    kept = orjson.loads(stored)["r"]["__exception__"]  # the traceback is kept for operators, not served
    assert (
        kept["traceback"]
        .rstrip()
        .endswith(f"workers.tasks.webhooks.WebhookRejectedError: webhook target {url} answered HTTP 410")
    )


async def test_delayed_job_is_scheduled_then_runs(http: httpx.AsyncClient, worker: Service) -> None:
    accepted = await http.post("/jobs/noop", params={"delay": 1.5}, json={"value": "later"})
    assert accepted.json()["status"] == "scheduled"
    first = (await http.get(accepted.json()["status_url"])).json()
    assert first["status"] == "scheduled"
    assert first["started_at"] is None
    done = await wait_for_status(http, accepted.json()["status_url"], terminal)
    assert done["status"] == "succeeded" and done["result"] == {"value": "later"}
    assert at(done["started_at"]) >= at(done["scheduled_for"])


async def test_run_at_job_runs_at_its_time(http: httpx.AsyncClient, worker: Service) -> None:
    when = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    accepted = await http.post("/jobs/noop", params={"run_at": when}, json={})
    assert accepted.json()["status"] == "scheduled"
    done = await wait_for_status(http, accepted.json()["status_url"], terminal)
    assert done["status"] == "succeeded"
    assert at(done["started_at"]) >= at(done["scheduled_for"])


async def test_stored_job_is_json_not_pickle(http: httpx.AsyncClient, redis_client: redis.Redis) -> None:
    accepted = await http.post("/jobs/noop", params={"delay": 3600}, json={"value": [1, 2]})
    raw = redis_client.get(f"arq:job:{accepted.json()['job_id']}")
    assert isinstance(raw, bytes)
    assert not raw.startswith(b"\x80")  # every pickle protocol >= 2 starts with PROTO 0x80
    decoded = orjson.loads(raw)
    assert (decoded["f"], decoded["a"], decoded["k"]) == ("noop", [{"value": [1, 2]}], {})


def test_worker_health_check_passes_while_running(worker: Service) -> None:
    check = subprocess.run(
        [ARQ, "--check", "workers.WorkerSettings"], cwd=ROOT, env=worker.env, capture_output=True, timeout=30
    )
    assert check.returncode == 0, check.stderr.decode()


def test_health_check_fails_for_a_queue_without_worker(redis_url: str) -> None:
    env = service_env(redis_url, "it-nobody-home")
    check = subprocess.run(
        [ARQ, "--check", "workers.WorkerSettings"], cwd=ROOT, env=env, capture_output=True, timeout=30
    )
    assert check.returncode == 1
