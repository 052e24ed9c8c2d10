"""arq_jobs._tracing with an in-memory exporter: enqueue → attempt context propagation, errors, the
FastAPI server span as the producer's parent, and no spans at all while tracing is off."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import StreamingResponse
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from arq_jobs import _tracing as tracing
from arq_jobs._tracing import (
    attempt_span,
    configure_tracing,
    enqueue_span,
    instrument_app,
    shutdown_tracing,
    tracing_enabled,
)

from .conftest import make_settings


@pytest.fixture(autouse=True)
def reset_tracing() -> Iterator[None]:
    yield
    shutdown_tracing()


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    exporter = InMemorySpanExporter()
    configure_tracing(make_settings(), "jobs-test", exporter=exporter)
    return exporter


def by_name(spans: tuple[ReadableSpan, ...], name: str) -> list[ReadableSpan]:
    return [span for span in spans if span.name == name]


def one(spans: tuple[ReadableSpan, ...], name: str) -> ReadableSpan:
    found = by_name(spans, name)
    assert len(found) == 1, [span.name for span in spans]
    return found[0]


def ids(span: ReadableSpan) -> tuple[int, int, int | None]:
    """trace id, span id, parent span id."""
    assert span.context is not None
    return span.context.trace_id, span.context.span_id, span.parent.span_id if span.parent else None


def traceparent(span: ReadableSpan) -> str:
    """The W3C traceparent of `span` (flags: sampled, plus "random trace id" from SDK 1.40 on)."""
    assert span.context is not None and span.context.trace_flags.sampled
    return f"00-{span.context.trace_id:032x}-{span.context.span_id:016x}-{span.context.trace_flags:02x}"


def test_attempt_is_a_child_of_the_enqueue_span_in_the_same_trace(exporter: InMemorySpanExporter) -> None:
    assert tracing_enabled()
    with enqueue_span("noop", "default", "job-1") as carrier:
        pass
    assert carrier is not None
    fields = json.loads(carrier)
    assert set(fields) == {"traceparent"}
    assert carrier == json.dumps(fields, separators=(",", ":"))  # compact
    with attempt_span(carrier, task="noop", queue="default", job_id="job-1", attempt=1):
        pass

    spans = exporter.get_finished_spans()
    producer, consumer = one(spans, "enqueue noop"), one(spans, "run noop")
    trace_id, producer_id, producer_parent = ids(producer)
    assert producer_parent is None
    assert fields["traceparent"] == traceparent(producer)
    consumer_trace, _, consumer_parent = ids(consumer)
    assert (consumer_trace, consumer_parent) == (trace_id, producer_id)
    assert (producer.kind, consumer.kind) == (SpanKind.PRODUCER, SpanKind.CONSUMER)
    assert dict(producer.attributes or {}) == {
        "messaging.system": "arq",
        "messaging.operation.type": "send",
        "messaging.destination.name": "default",
        "messaging.message.id": "job-1",
        "jobs.task": "noop",
    }
    assert dict(consumer.attributes or {}) == {
        "messaging.system": "arq",
        "messaging.operation.type": "process",
        "messaging.destination.name": "default",
        "messaging.message.id": "job-1",
        "jobs.task": "noop",
        "jobs.attempt": 1,
    }
    assert producer.resource.attributes["service.name"] == "jobs-test"
    assert producer.status.status_code == consumer.status.status_code == StatusCode.UNSET


def test_enqueue_span_is_a_child_of_the_current_span(exporter: InMemorySpanExporter) -> None:
    assert tracing._provider is not None
    with tracing._provider.get_tracer("test").start_as_current_span("outer"):
        with enqueue_span("noop", "default", "job-1"):
            pass
    spans = exporter.get_finished_spans()
    outer, producer = one(spans, "outer"), one(spans, "enqueue noop")
    assert ids(producer)[0] == ids(outer)[0]
    assert ids(producer)[2] == ids(outer)[1]


def test_every_attempt_of_a_retried_job_is_a_child_of_the_producer(exporter: InMemorySpanExporter) -> None:
    with enqueue_span("send_webhook", "default", "job-2") as carrier:
        pass
    with (
        pytest.raises(RuntimeError),
        attempt_span(carrier, task="send_webhook", queue="default", job_id="job-2", attempt=1),
    ):
        raise RuntimeError("HTTP 503")
    with attempt_span(carrier, task="send_webhook", queue="default", job_id="job-2", attempt=2):
        pass

    spans = exporter.get_finished_spans()
    trace_id, producer_id, _ = ids(one(spans, "enqueue send_webhook"))
    attempts = by_name(spans, "run send_webhook")
    assert [(ids(s)[0], ids(s)[2]) for s in attempts] == [(trace_id, producer_id)] * 2
    assert len({ids(s)[1] for s in attempts}) == 2
    assert [(s.attributes or {})["jobs.attempt"] for s in attempts] == [1, 2]
    assert [s.status.status_code for s in attempts] == [StatusCode.ERROR, StatusCode.UNSET]


def test_a_failing_attempt_records_the_exception_and_re_raises_it(exporter: InMemorySpanExporter) -> None:
    with enqueue_span("noop", "default", "job-3") as carrier:
        pass
    with (
        pytest.raises(ValueError, match="bad input"),
        attempt_span(carrier, task="noop", queue="default", job_id="job-3", attempt=1),
    ):
        raise ValueError("bad input")

    consumer = one(exporter.get_finished_spans(), "run noop")
    assert consumer.status.status_code == StatusCode.ERROR
    assert consumer.status.description == "ValueError: bad input"
    [event] = consumer.events
    assert event.name == "exception"
    assert (event.attributes or {})["exception.type"] == "ValueError"
    assert (event.attributes or {})["exception.message"] == "bad input"


async def test_a_cancelled_attempt_is_recorded_and_the_cancellation_re_raised(
    exporter: InMemorySpanExporter,
) -> None:
    async def attempt() -> None:
        with attempt_span(None, task="nap", queue="default", job_id="job-4", attempt=1):
            await asyncio.sleep(60)

    running = asyncio.create_task(attempt())
    await asyncio.sleep(0.01)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running

    consumer = one(exporter.get_finished_spans(), "run nap")
    assert consumer.status.status_code == StatusCode.ERROR
    assert [e.name for e in consumer.events] == ["exception"]
    assert (consumer.events[0].attributes or {})["exception.type"] == "asyncio.exceptions.CancelledError"


def test_an_exception_while_enqueueing_marks_the_producer_span(exporter: InMemorySpanExporter) -> None:
    with pytest.raises(ConnectionError), enqueue_span("noop", "default", "job-5"):
        raise ConnectionError("redis is down")
    producer = one(exporter.get_finished_spans(), "enqueue noop")
    assert producer.status.status_code == StatusCode.ERROR
    assert [e.name for e in producer.events] == ["exception"]


@pytest.mark.parametrize(
    "carrier",
    [
        None,
        "",
        "not json",
        "[1, 2]",
        '{"traceparent": 5}',
        '{"traceparent": "00-zz-yy-01"}',
        '{"traceparent": "00-00000000000000000000000000000000-0000000000000000-01"}',
        '{"a": {"b": [' * 5000,
    ],
)
def test_a_missing_or_bad_carrier_starts_a_new_trace(
    exporter: InMemorySpanExporter, carrier: str | None
) -> None:
    assert tracing._provider is not None
    with (
        tracing._provider.get_tracer("test").start_as_current_span("unrelated"),
        attempt_span(carrier, task="noop", queue="default", job_id="job-6", attempt=1),
    ):
        pass
    spans = exporter.get_finished_spans()
    consumer, unrelated = one(spans, "run noop"), one(spans, "unrelated")
    assert ids(consumer)[2] is None
    assert ids(consumer)[0] != ids(unrelated)[0]
    assert consumer.status.status_code == StatusCode.UNSET


def test_tracestate_travels_with_the_job(exporter: InMemorySpanExporter) -> None:
    carrier = json.dumps(
        {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "tracestate": "vendor=x"}
    )
    with attempt_span(carrier, task="noop", queue="default", job_id="job-7", attempt=1):
        with enqueue_span("noop", "default", "job-8") as child_carrier:
            pass
    consumer = one(exporter.get_finished_spans(), "run noop")
    assert consumer.context is not None
    assert ids(consumer)[0] == 0x0AF7651916CD43DD8448EB211C80319C
    assert ids(consumer)[2] == 0xB7AD6B7169203331
    assert consumer.context.trace_state.to_header() == "vendor=x"
    assert child_carrier is not None and json.loads(child_carrier)["tracestate"] == "vendor=x"


def test_off_means_no_spans_and_no_carrier() -> None:
    exporter = InMemorySpanExporter()
    configure_tracing(make_settings(tracing_enabled=False), "jobs-test")  # no exporter: a no-op
    assert not tracing_enabled()
    with enqueue_span("noop", "default", "job-9") as carrier:
        assert not trace.get_current_span().get_span_context().is_valid
    assert carrier is None
    with (
        pytest.raises(KeyError),
        attempt_span('{"traceparent": "x"}', task="noop", queue="default", job_id="job-9", attempt=1),
    ):
        assert not trace.get_current_span().get_span_context().is_valid
        raise KeyError("boom")
    app = FastAPI()
    instrument_app(app)
    assert not getattr(app, "_is_instrumented_by_opentelemetry", False)
    assert exporter.get_finished_spans() == ()


def test_shutdown_turns_tracing_off_and_configure_works_again() -> None:
    first, second = InMemorySpanExporter(), InMemorySpanExporter()
    configure_tracing(make_settings(), "first", exporter=first)
    with enqueue_span("noop", "default", "a"):
        pass
    configure_tracing(make_settings(), "second", exporter=second)  # replaces the first
    with enqueue_span("noop", "default", "b"):
        pass
    shutdown_tracing()
    shutdown_tracing()  # twice is fine
    assert not tracing_enabled()
    with enqueue_span("noop", "default", "c") as carrier:
        assert carrier is None
    assert [(s.attributes or {})["messaging.message.id"] for s in first.get_finished_spans()] == ["a"]
    assert [(s.attributes or {})["messaging.message.id"] for s in second.get_finished_spans()] == ["b"]
    assert second.get_finished_spans()[0].resource.attributes["service.name"] == "second"


def test_enabled_by_the_setting_exports_over_otlp_http() -> None:
    settings = make_settings(tracing_enabled=True, otlp_endpoint="http://127.0.0.1:9/v1/traces")
    configure_tracing(settings, "jobs-api")
    assert tracing_enabled()
    assert tracing._provider is not None
    processors = tracing._provider._active_span_processor._span_processors
    assert [type(p).__name__ for p in processors] == ["BatchSpanProcessor"]
    exporter = processors[0]._batch_processor._exporter  # type: ignore[attr-defined]
    assert type(exporter).__name__ == "OTLPSpanExporter"
    assert exporter._endpoint == "http://127.0.0.1:9/v1/traces"
    shutdown_tracing()  # nothing buffered: returns at once
    assert not tracing_enabled()


def traced_app() -> FastAPI:
    app = FastAPI()

    @app.post("/jobs/{task}")
    async def enqueue(task: str) -> dict[str, str | None]:
        with enqueue_span(task, "default", "job-10") as carrier:
            await asyncio.sleep(0)
        return {"carrier": carrier}

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def chunks() -> AsyncIterator[str]:
            for n in range(5):
                yield f"data: {n}\n\n"
                await asyncio.sleep(0)

        return StreamingResponse(chunks(), media_type="text/event-stream")

    instrument_app(app)
    return app


async def test_the_request_span_is_the_parent_of_the_enqueue_span(exporter: InMemorySpanExporter) -> None:
    app = traced_app()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        response = await client.post("/jobs/noop")
    assert response.status_code == 200
    spans = exporter.get_finished_spans()
    assert sorted(s.name for s in spans) == ["POST /jobs/{task}", "enqueue noop"]
    server, producer = one(spans, "POST /jobs/{task}"), one(spans, "enqueue noop")
    assert server.kind == SpanKind.SERVER
    assert ids(producer)[0] == ids(server)[0]
    assert ids(producer)[2] == ids(server)[1]
    carrier = response.json()["carrier"]
    assert json.loads(carrier)["traceparent"] == traceparent(producer)


async def test_a_streamed_response_makes_one_span_not_one_per_chunk(exporter: InMemorySpanExporter) -> None:
    app = traced_app()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        response = await client.get("/stream")
    assert response.text.count("data: ") == 5
    spans = exporter.get_finished_spans()
    assert [(s.name, s.kind) for s in spans] == [("GET /stream", SpanKind.SERVER)]
