"""OpenTelemetry tracing, off unless `tracing_enabled`: a span per enqueue, whose trace context is
stored with the job, and a span per attempt that continues that trace.

OpenTelemetry is imported only once tracing is configured (`configure_tracing` with tracing on, or
given an exporter): a process with tracing off (the default) does not load its ~50 modules; the
spans' context managers return before reaching it while no tracer is installed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import TYPE_CHECKING

from arq_jobs._config import Settings

if TYPE_CHECKING:
    from fastapi import FastAPI
    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Span, Tracer
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
    from opentelemetry.util.types import AttributeValue

API_SERVICE = "jobs-api"
WORKER_SERVICE = "jobs-worker"
TRACER_NAME = "arq_jobs"
MESSAGING_SYSTEM = "arq"

# our own provider, not the global one (settable once per process): tests configure tracing again and
# again, and everything traced here is handed this provider explicitly
_provider: TracerProvider | None = None
_tracer: Tracer | None = None


def configure_tracing(settings: Settings, service_name: str, exporter: SpanExporter | None = None) -> None:
    """Start tracing as `service_name`: batched OTLP/HTTP export to `settings.otlp_endpoint` (None: the
    OTEL_EXPORTER_OTLP_* variables decide), or, given an `exporter` (tests), synchronous export to it.

    A no-op when tracing is off and no exporter is given; called again, it replaces the provider it
    installed before (after flushing it).
    """
    global _provider, _tracer
    if exporter is None and not settings.tracing_enabled:
        return
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    shutdown_tracing()
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service_name}))
    if exporter is None:
        # imported here: the exporter pulls in requests and protobuf, which a process without tracing
        # has no use for
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=settings.otlp_endpoint)))
    else:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    _provider = provider
    _tracer = provider.get_tracer(TRACER_NAME)


def shutdown_tracing() -> None:
    """Export the spans still buffered and stop the provider `configure_tracing` installed (if any);
    tracing is off afterwards."""
    global _provider, _tracer
    provider, _provider, _tracer = _provider, None, None
    if provider is not None:
        provider.shutdown()


def tracing_enabled() -> bool:
    return _tracer is not None


@cache
def _propagator() -> TraceContextTextMapPropagator:
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    return TraceContextTextMapPropagator()


def _attributes(operation: str, task: str, queue: str, job_id: str) -> dict[str, AttributeValue]:
    return {
        "messaging.system": MESSAGING_SYSTEM,
        "messaging.operation.type": operation,
        "messaging.destination.name": queue,
        "messaging.message.id": job_id,
        "jobs.task": task,
    }


def _fail(span: Span, error: BaseException) -> None:
    from opentelemetry.trace import Status, StatusCode

    span.record_exception(error)
    message = str(error)
    span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {message}" if message else None))


def _parent(carrier: str | None) -> Context:
    """The context stored at enqueue; an empty one (so: a new trace) when absent or unreadable."""
    from opentelemetry.context import Context

    if not carrier:
        return Context()
    try:
        fields = json.loads(carrier)
        if not isinstance(fields, dict):
            return Context()
        headers = {k: v for k, v in fields.items() if isinstance(k, str) and isinstance(v, str)}
        return _propagator().extract(headers, context=Context())
    except Exception:  # a bad carrier must never fail a job
        return Context()


@contextmanager
def enqueue_span(task: str, queue: str, job_id: str, count: int = 1) -> Iterator[str | None]:
    """A PRODUCER span `enqueue <task>` (child of the current span) around putting a job on its queue;
    yields that span's W3C trace context as compact JSON, to store with the job, or None when tracing
    is off. An exception inside is recorded on the span and re-raised. For a batch of `count` jobs
    (`job_id`: the first one's) one span stands for all of them, each job storing its context."""
    tracer = _tracer
    if tracer is None:
        yield None
        return
    from opentelemetry.trace import SpanKind

    attributes = _attributes("send", task, queue, job_id)
    if count != 1:
        attributes["messaging.batch.message_count"] = count
    with tracer.start_as_current_span(
        f"enqueue {task}",
        kind=SpanKind.PRODUCER,
        attributes=attributes,
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        headers: dict[str, str] = {}
        _propagator().inject(headers)
        try:
            yield json.dumps(headers, separators=(",", ":")) if headers else None
        except BaseException as error:
            _fail(span, error)
            raise


@contextmanager
def attempt_span(carrier: str | None, *, task: str, queue: str, job_id: str, attempt: int) -> Iterator[None]:
    """A CONSUMER span `run <task>` around one attempt, child of the enqueue span whose context is
    `carrier` (a new trace when it is None or unreadable). An exception escaping the attempt,
    `asyncio.CancelledError` included, is recorded on the span and re-raised."""
    tracer = _tracer
    if tracer is None:
        yield
        return
    from opentelemetry.trace import SpanKind

    attributes = _attributes("process", task, queue, job_id)
    attributes["jobs.attempt"] = attempt
    with tracer.start_as_current_span(
        f"run {task}",
        context=_parent(carrier),
        kind=SpanKind.CONSUMER,
        attributes=attributes,
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        try:
            yield
        except BaseException as error:
            _fail(span, error)
            raise


def instrument_app(app: FastAPI) -> None:
    """Trace the app's requests (SERVER spans) with our provider; a no-op while tracing is off, so call
    it after `configure_tracing`. No spans per ASGI message: an event stream would make one per event."""
    if _provider is None:
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(app, tracer_provider=_provider, exclude_spans=["send", "receive"])
