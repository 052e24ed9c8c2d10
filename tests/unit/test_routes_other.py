"""GET /tasks, health probes, the example /reports route, and the error answers of app.main."""

from __future__ import annotations

import httpx
from arq.connections import ArqRedis
from fastapi import FastAPI

from workers.tasks.reports import Report, aggregate, generate_rows, summarize


async def test_tasks_lists_every_task_with_schema_queue_and_limits(client: httpx.AsyncClient) -> None:
    response = await client.get("/tasks")
    assert response.status_code == 200
    tasks = {t["name"]: t for t in response.json()["tasks"]}
    assert set(tasks) == {"noop", "send_webhook", "generate_report"}
    webhook = tasks["send_webhook"]
    assert (webhook["queue"], webhook["timeout_s"], webhook["soft_timeout_s"]) == ("default", 30, 24)
    assert (webhook["max_attempts"], webhook["retry"]) == (
        5,
        {"base_s": 1, "factor": 2, "cap_s": 60, "retry_on": ["httpx.TransportError"], "fail_on": []},
    )
    assert tasks["noop"]["retry"] == {
        "base_s": 1, "factor": 2, "cap_s": 300, "retry_on": ["Exception"], "fail_on": []
    }  # fmt: skip
    assert webhook["description"] == "POST a JSON body to a URL; any 2xx answer is success."
    assert webhook["input_schema"]["required"] == ["url", "payload"]
    assert set(webhook["result_schema"]["properties"]) == {"status_code", "elapsed_ms"}
    assert tasks["generate_report"]["input_schema"]["properties"]["rows"]["maximum"] == 500_000


async def test_health_probes(client: httpx.AsyncClient) -> None:
    assert (await client.get("/health/live")).json() == {"status": "ok", "redis": None}
    ready = await client.get("/health/ready")
    assert (ready.status_code, ready.json()) == (200, {"status": "ok", "redis": "ok"})


async def test_report_example_enqueues_and_serves_the_report(
    client: httpx.AsyncClient, arq_redis: ArqRedis
) -> None:
    response = await client.post("/reports", json={"rows": 100, "seed": 4})
    assert response.status_code == 202
    body = response.json()
    assert body["report_id"] == body["job_id"]
    assert body["status_url"] == response.headers["location"] == f"http://test/jobs/{body['job_id']}"
    assert body["report_url"] == f"http://test/reports/{body['job_id']}"
    job = (await client.get(body["status_url"])).json()
    assert (job["task"], job["status"]) == ("generate_report", "pending")

    missing = await client.get(body["report_url"])
    assert missing.status_code == 404
    assert missing.json()["error"] == "report_not_found" and missing.json()["report_id"] == body["job_id"]

    rows = generate_rows(100, 4)
    report = summarize(body["job_id"], rows, aggregate(rows))
    await arq_redis.set(f"unit:report:{body['job_id']}", report.model_dump_json())
    served = await client.get(body["report_url"])
    assert served.status_code == 200
    assert Report.model_validate(served.json()) == report


async def test_report_request_is_validated(client: httpx.AsyncClient) -> None:
    response = await client.post("/reports", json={"rows": 0})
    assert response.status_code == 422
    assert (
        response.json()["message"] == "invalid request: body.rows: Input should be greater than or equal to 1"
    )


async def test_unknown_route_and_method_answer_json(client: httpx.AsyncClient) -> None:
    missing = await client.get("/nowhere")
    assert (missing.status_code, missing.json()) == (
        404,
        {"error": "not_found", "message": "Not Found", "detail": "Not Found"},
    )
    wrong = await client.delete("/tasks")
    assert wrong.status_code == 405 and wrong.json()["error"] == "http_error"


async def test_unexpected_errors_are_500_without_a_trace(app: FastAPI) -> None:
    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/boom")
    assert response.status_code == 500
    assert response.json() == {"error": "internal_error", "message": "internal server error"}
