"""Tracing end to end: the real API and a real worker export OTLP/HTTP to a local receiver; a job is
one trace from the API's request span through the enqueue span to every attempt's span."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest

from arq_jobs._config import Settings
from arq_jobs._tracing import (
    API_SERVICE,
    WORKER_SERVICE,
    attempt_span,
    configure_tracing,
    enqueue_span,
    shutdown_tracing,
)

from .conftest import (
    ARQ,
    Service,
    WebhookTarget,
    delete_prefix,
    http_ok,
    service_env,
    start_api,
    terminal,
    wait_for_status,
)
from .otlp_receiver import OtlpReceiver, ReceivedSpan, otlp_receiver

SPANS_TIMEOUT_S = 15


@dataclass
class Traced:
    """An API and a worker with tracing on, both exporting to `receiver`."""

    receiver: OtlpReceiver
    api: str
    services: list[Service]

    async def wait_for(
        self, deadline: float, match: Callable[[ReceivedSpan], bool], count: int = 1
    ) -> list[ReceivedSpan]:
        """Spans matching `match` (at least `count`), waiting until `deadline` (time.monotonic())."""
        try:
            return await asyncio.to_thread(
                self.receiver.wait_for, match, count, max(0.0, deadline - time.monotonic())
            )
        except AssertionError as error:
            logs = "\n".join(f"--- {s.name} log (tail):\n{s.log()[-3000:]}" for s in self.services)
            raise AssertionError(f"{error}\n{logs}") from None


@pytest.fixture(scope="module")
def traced(redis_url: str, key_prefix: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Traced]:
    # a prefix of its own: a job must not be taken by another test's (untraced) worker
    prefix = f"{key_prefix}-tracing"
    log_dir = tmp_path_factory.mktemp("tracing")
    services: list[Service] = []
    with otlp_receiver() as receiver:
        env = service_env(
            redis_url,
            prefix,
            JOBS_TRACING_ENABLED="1",
            JOBS_OTLP_ENDPOINT=receiver.traces_url,
            OTEL_BSP_SCHEDULE_DELAY="200",
        )
        try:
            api, base = start_api(env, log_dir, name="traced-api")
            services.append(api)
            worker = Service("traced-worker", [ARQ, "workers.WorkerSettings"], env, log_dir / "worker.log")
            services.append(worker.start())
            api.wait_until(http_ok(f"{base}/health/ready"))
            worker.wait_until(lambda: re.search(r"worker \S+ started", worker.log()) is not None)
            yield Traced(receiver, base, services)
        finally:
            for service in reversed(services):
                service.stop()
            delete_prefix(redis_url, prefix)


@pytest.fixture
async def traced_http(traced: Traced) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=traced.api, timeout=10) as client:
        yield client


def of_job(job_id: str, kind: str) -> Callable[[ReceivedSpan], bool]:
    return lambda span: span.kind == kind and span.attributes.get("messaging.message.id") == job_id


def test_spans_reach_an_otlp_http_receiver() -> None:
    """The exporter path on its own (in this process): batched OTLP/HTTP, flushed by shutdown."""
    with otlp_receiver() as receiver:
        settings = Settings(_env_file=None, tracing_enabled=True, otlp_endpoint=receiver.traces_url)  # type: ignore[call-arg]
        configure_tracing(settings, "jobs-test")
        try:
            with enqueue_span("noop", "default", "job-1") as carrier:
                pass
            with attempt_span(carrier, task="noop", queue="default", job_id="job-1", attempt=1):
                pass
        finally:
            shutdown_tracing()
        producer, consumer = receiver.wait_for(
            lambda s: s.attributes.get("messaging.message.id") == "job-1", count=2, timeout_s=5
        )
    assert (producer.name, producer.kind, producer.service) == ("enqueue noop", "PRODUCER", "jobs-test")
    assert (consumer.name, consumer.kind, consumer.attributes["jobs.attempt"]) == ("run noop", "CONSUMER", 1)
    assert consumer.trace_id == producer.trace_id
    assert consumer.parent_span_id == producer.span_id


async def test_a_job_is_one_trace_from_request_to_attempt(
    traced: Traced, traced_http: httpx.AsyncClient
) -> None:
    accepted = await traced_http.post("/jobs/noop", json={"value": "traced"})
    assert accepted.status_code == 202, accepted.text
    job_id = accepted.json()["job_id"]
    done = await wait_for_status(traced_http, accepted.json()["status_url"], terminal)
    assert done["status"] == "succeeded"

    deadline = time.monotonic() + SPANS_TIMEOUT_S
    [producer] = await traced.wait_for(deadline, of_job(job_id, "PRODUCER"))
    [consumer] = await traced.wait_for(deadline, of_job(job_id, "CONSUMER"))
    [server] = await traced.wait_for(deadline, lambda s: s.span_id == producer.parent_span_id)

    assert (server.kind, server.name, server.service) == ("SERVER", "POST /jobs/noop", API_SERVICE)
    assert server.parent_span_id == ""  # the client sent no trace context: the request starts the trace
    assert (producer.name, producer.service) == ("enqueue noop", API_SERVICE)
    assert producer.attributes == {
        "messaging.system": "arq",
        "messaging.operation.type": "send",
        "messaging.destination.name": "default",
        "messaging.message.id": job_id,
        "jobs.task": "noop",
    }
    assert (consumer.name, consumer.service, consumer.status) == ("run noop", WORKER_SERVICE, "UNSET")
    assert consumer.parent_span_id == producer.span_id
    assert consumer.attributes == {
        "messaging.system": "arq",
        "messaging.operation.type": "process",
        "messaging.destination.name": "default",
        "messaging.message.id": job_id,
        "jobs.task": "noop",
        "jobs.attempt": 1,
    }
    assert server.trace_id == producer.trace_id == consumer.trace_id


async def test_every_attempt_of_a_retried_job_is_in_the_job_trace(
    traced: Traced, traced_http: httpx.AsyncClient, webhook_target: WebhookTarget
) -> None:
    path = f"/sequence/503,200/{uuid.uuid4().hex}"
    accepted = await traced_http.post(
        "/jobs/send_webhook", json={"url": webhook_target.url + path, "payload": {}}
    )
    assert accepted.status_code == 202, accepted.text
    job_id = accepted.json()["job_id"]
    done = await wait_for_status(traced_http, accepted.json()["status_url"], terminal)
    assert (done["status"], done["attempt"]) == ("succeeded", 2)

    deadline = time.monotonic() + SPANS_TIMEOUT_S
    [producer] = await traced.wait_for(deadline, of_job(job_id, "PRODUCER"))
    attempts = await traced.wait_for(deadline, of_job(job_id, "CONSUMER"), count=2)
    attempts.sort(key=lambda span: span.attributes["jobs.attempt"])

    assert producer.name == "enqueue send_webhook"
    assert [span.attributes["jobs.attempt"] for span in attempts] == [1, 2]
    assert {span.name for span in attempts} == {"run send_webhook"}
    assert {span.service for span in attempts} == {WORKER_SERVICE}
    assert [(span.trace_id, span.parent_span_id) for span in attempts] == [
        (producer.trace_id, producer.span_id)
    ] * 2
    assert attempts[0].span_id != attempts[1].span_id
    # the first attempt failed (HTTP 503, retried): its span says so
    assert (attempts[0].status, attempts[0].events) == ("ERROR", ("exception",))
    assert (attempts[1].status, attempts[1].events) == ("UNSET", ())
