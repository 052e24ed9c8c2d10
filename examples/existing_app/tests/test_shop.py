"""The shop with arq-jobs installed, on an in-memory Redis (`arq_jobs.testing.JobsHarness`): its own
routes enqueue receipts that the real runner executes, and its own answers and OpenAPI stay its own."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from shop.main import app
from shop.worker import DEFAULT_SENDER, WorkerSettings

from arq_jobs.testing import JobsHarness

ORDER = {
    "email": "ada@example.com",
    "lines": [
        {"sku": "tea-earl-grey", "quantity": 2, "unit_price_cents": 450},
        {"sku": "mug", "quantity": 1, "unit_price_cents": 1200},
    ],
}


@pytest.fixture
async def harness() -> AsyncIterator[JobsHarness]:
    async with JobsHarness(app, worker=WorkerSettings) as harness:
        yield harness


async def test_an_order_is_accepted_and_its_receipt_sent_by_a_worker(harness: JobsHarness) -> None:
    response = await harness.client.post("/orders", json=ORDER)

    assert response.status_code == 202, response.text
    accepted = response.json()
    job_id = accepted["receipt_job_id"]
    order_id = accepted["order_id"]
    status_url = f"http://test/jobs-api/jobs/{job_id}"
    assert accepted == {
        "order_id": order_id,
        "total_cents": 2100,
        "receipt_job_id": job_id,
        "receipt_status_url": status_url,
    }
    assert response.headers["location"] == status_url
    pending = await harness.client.get(f"/orders/{order_id}")
    assert pending.json()["receipt_status"] == "pending"

    assert await harness.drain() == [job_id]

    status = (await harness.client.get(status_url)).json()
    assert (status["task"], status["status"], status["attempt"]) == ("send_receipt", "succeeded", 1)
    assert status["result"] == {
        "order_id": order_id,
        "to": "ada@example.com",
        "total_cents": 2100,
        "message_id": f"<{job_id}@shop.example>",
        "sent_by": DEFAULT_SENDER,  # the mailer the worker's on_startup opened
    }
    order = await harness.client.get(f"/orders/{order_id}")
    assert order.status_code == 200
    assert order.json() == {
        "order_id": order_id,
        "email": "ada@example.com",
        "lines": ORDER["lines"],
        "total_cents": 2100,
        "receipt_job_id": job_id,
        "receipt_status": "succeeded",
    }


async def test_an_invalid_order_is_refused_by_the_shop_and_enqueues_nothing(harness: JobsHarness) -> None:
    response = await harness.client.post("/orders", json={"email": "ada@example.com", "lines": []})

    assert response.status_code == 422
    assert [(e["loc"], e["type"]) for e in response.json()["detail"]] == [(["body", "lines"], "too_short")]
    assert await harness.drain() == []


async def test_the_mounted_job_route_enqueues_the_shops_task(harness: JobsHarness) -> None:
    body = {"order_id": "manual-1", "email": "bob@example.com", "total_cents": 999}

    response = await harness.client.post("/jobs-api/jobs/send_receipt", json=body)

    assert response.status_code == 202, response.text
    job_id = response.json()["job_id"]
    assert response.headers["location"] == f"http://test/jobs-api/jobs/{job_id}"
    status = await harness.run(job_id)
    assert (status.status, status.attempt) == ("succeeded", 1)
    assert status.result == {
        "order_id": "manual-1",
        "to": "bob@example.com",
        "total_cents": 999,
        "message_id": f"<{job_id}@shop.example>",
        "sent_by": DEFAULT_SENDER,
    }


async def test_the_mounted_job_route_answers_its_own_errors(harness: JobsHarness) -> None:
    unknown = await harness.client.get("/jobs-api/jobs/no-such-job")
    invalid = await harness.client.post("/jobs-api/jobs/send_receipt", json={"order_id": "x"})

    assert unknown.status_code == 404
    assert unknown.json() == {
        "error": "job_not_found",
        "message": "no job with id 'no-such-job' (unknown, or its record has expired)",
        "job_id": "no-such-job",
    }
    assert invalid.status_code == 422
    assert invalid.json()["error"] == "validation_error"
    assert invalid.json()["task"] == "send_receipt"


async def test_the_shops_errors_and_404s_keep_the_shops_shape(harness: JobsHarness) -> None:
    missing_order = await harness.client.get("/orders/nope")
    unknown_path = await harness.client.get("/no-such-page")

    assert missing_order.status_code == 404
    assert missing_order.json() == {"problem": "order_not_found", "detail": "no order 'nope'"}
    assert unknown_path.status_code == 404
    assert unknown_path.json() == {"problem": "http_404", "detail": "Not Found", "path": "/no-such-page"}


async def test_the_openapi_document_is_the_shops(harness: JobsHarness) -> None:
    document = (await harness.client.get("/openapi.json")).json()

    assert (document["info"]["title"], document["info"]["version"]) == ("Shop", "1.0.0")
    assert {"/orders", "/orders/{order_id}", "/jobs-api/jobs/send_receipt"} <= set(document["paths"])
