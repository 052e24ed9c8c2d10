"""The error answers over real HTTP, including Redis being unreachable."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from devserver.redis_server import free_port

from .conftest import http_ok, service_env, start_api


async def test_unknown_task_is_404(http: httpx.AsyncClient) -> None:
    response = await http.post("/jobs/transcode", json={})
    assert response.status_code == 404
    assert response.json() == {
        "error": "unknown_task",
        "message": "no task named 'transcode' is registered",
        "task": "transcode",
    }


async def test_invalid_body_is_422_naming_the_field(http: httpx.AsyncClient) -> None:
    response = await http.post("/jobs/generate_report", json={"rows": "lots"})
    assert response.status_code == 422
    body = response.json()
    assert (body["error"], body["task"]) == ("validation_error", "generate_report")
    assert body["detail"] == [
        {
            "loc": ["body", "rows"],
            "msg": "Input should be a valid integer, unable to parse string as an integer",
            "type": "int_parsing",
        }
    ]


async def test_schedule_errors_are_422(http: httpx.AsyncClient) -> None:
    both = await http.post("/jobs/noop", params={"delay": 1, "run_at": "2031-01-01T00:00:00Z"}, json={})
    assert (both.status_code, both.json()["error"]) == (422, "invalid_schedule")
    negative = await http.post("/jobs/noop", params={"delay": -3}, json={})
    assert negative.status_code == 422 and negative.json()["detail"][0]["loc"] == ["query", "delay"]
    naive = await http.post("/jobs/noop", params={"run_at": "2031-01-01T00:00:00"}, json={})
    assert naive.status_code == 422 and naive.json()["detail"][0]["loc"] == ["query", "run_at"]


async def test_unknown_job_is_404(http: httpx.AsyncClient) -> None:
    response = await http.get("/jobs/0123456789abcdef")
    assert response.status_code == 404
    assert response.json()["job_id"] == "0123456789abcdef"


async def test_tasks_and_openapi(http: httpx.AsyncClient) -> None:
    tasks = (await http.get("/tasks")).json()["tasks"]
    # the shipped tasks plus the probes the tests load through JOBS_TASK_PACKAGES
    assert sorted(t["name"] for t in tasks) == [
        "capped_span", "edge_capped", "edge_flaky", "edge_paced", "edge_unjsonable", "fail", "generate_report", "hold", "nap", "noop", "overrun", "paced_ping", "record_tick",
        "send_webhook", "wf_add", "wf_double", "wf_fail_always", "wf_greet", "wf_square", "wf_total",
    ]  # fmt: skip
    limits = {t["name"]: (t["rate_limit"], t["max_concurrency"]) for t in tasks}
    assert (limits["paced_ping"], limits["capped_span"], limits["noop"]) == (
        ("10/s", None),
        (None, 2),
        (None, None),
    )
    paths = {"/schedules", "/workflows", "/workflows/{workflow_id}"}
    spec = (await http.get("/openapi.json")).json()
    assert {
        "/jobs/noop",
        "/jobs/send_webhook",
        "/jobs/generate_report",
        "/jobs/{job_id}",
        "/tasks",
        *paths,
    } <= set(spec["paths"])


@pytest.fixture(scope="module")
def api_without_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    dead = f"redis://127.0.0.1:{free_port()}/0"  # a free port: nothing answers there
    service, base = start_api(
        service_env(dead, "it-down"), Path(tmp_path_factory.mktemp("api-down")), "api-down"
    )
    try:
        service.wait_until(http_ok(f"{base}/health/live"))
        yield base
    finally:
        service.stop()


async def test_redis_unreachable_is_503_with_json(api_without_redis: str) -> None:
    async with httpx.AsyncClient(base_url=api_without_redis, timeout=10) as client:
        for response in (
            await client.post("/jobs/noop", json={}),
            await client.get("/jobs/abc"),
            await client.get("/health/ready"),
        ):
            assert response.status_code == 503
            assert response.headers["content-type"] == "application/json"
            assert response.json() == {
                "error": "redis_unavailable",
                "message": "Redis is unreachable; the request was not completed. Try again shortly.",
            }
        assert (await client.get("/health/live")).status_code == 200
