"""A tiny OTLP/HTTP trace receiver for tests: takes `POST /v1/traces` (protobuf), keeps the spans, and
lets a test wait until the spans it expects have arrived."""

from __future__ import annotations

import gzip
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

TRACES_PATH = "/v1/traces"
PROTOBUF = "application/x-protobuf"


@dataclass(frozen=True)
class ReceivedSpan:
    """One exported span; ids in lowercase hex, `parent_span_id` "" for a root span, `kind` one of
    INTERNAL, SERVER, CLIENT, PRODUCER, CONSUMER and `status` one of UNSET, OK, ERROR."""

    name: str
    kind: str
    trace_id: str
    span_id: str
    parent_span_id: str
    attributes: dict[str, Any]
    service: str | None
    status: str = "UNSET"
    events: tuple[str, ...] = field(default=())

    def __str__(self) -> str:
        return (
            f"{self.service}: {self.kind} {self.name!r} trace={self.trace_id} span={self.span_id} "
            f"parent={self.parent_span_id or '-'} status={self.status} {self.attributes}"
        )


def any_value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [any_value(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return {item.key: any_value(item.value) for item in value.kvlist_value.values}
    return getattr(value, kind)


def decode(body: bytes) -> list[ReceivedSpan]:
    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    spans = []
    for resource_spans in request.resource_spans:
        resource = {a.key: any_value(a.value) for a in resource_spans.resource.attributes}
        service = resource.get("service.name")
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                spans.append(
                    ReceivedSpan(
                        name=span.name,
                        kind=Span.SpanKind.Name(span.kind).removeprefix("SPAN_KIND_"),
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_span_id=span.parent_span_id.hex(),
                        attributes={a.key: any_value(a.value) for a in span.attributes},
                        service=service,
                        status=Status.StatusCode.Name(span.status.code).removeprefix("STATUS_CODE_"),
                        events=tuple(event.name for event in span.events),
                    )
                )
    return spans


class OtlpReceiver:
    """An OTLP/HTTP receiver on 127.0.0.1 and a free port, serving from a daemon thread; point an
    exporter at `traces_url`."""

    def __init__(self) -> None:
        self._spans: list[ReceivedSpan] = []
        self._changed = threading.Condition()
        self.requests = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                if self.path.split("?")[0] != TRACES_PATH:
                    return self.answer(404)
                if self.headers.get("content-type", "").split(";")[0].strip() != PROTOBUF:
                    return self.answer(415)
                encoding = self.headers.get("content-encoding", "").strip().lower()
                try:
                    if encoding == "gzip":
                        body = gzip.decompress(body)
                    elif encoding == "deflate":
                        body = zlib.decompress(body)
                    spans = decode(body)
                except Exception:
                    return self.answer(400)
                receiver.add(spans)
                self.answer(200, ExportTraceServiceResponse().SerializeToString())

            def answer(self, code: int, body: bytes = b"") -> None:
                self.send_response(code)
                self.send_header("content-type", PROTOBUF)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.traces_url = self.url + TRACES_PATH
        self._thread = threading.Thread(target=self.server.serve_forever, name="otlp-receiver", daemon=True)

    def start(self) -> OtlpReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)

    def add(self, spans: list[ReceivedSpan]) -> None:
        with self._changed:
            self.requests += 1
            self._spans.extend(spans)
            self._changed.notify_all()

    @property
    def spans(self) -> list[ReceivedSpan]:
        """Every span received so far, in arrival order."""
        with self._changed:
            return list(self._spans)

    def wait_for(
        self, match: Callable[[ReceivedSpan], bool], count: int = 1, timeout_s: float = 15
    ) -> list[ReceivedSpan]:
        """Block until at least `count` received spans satisfy `match`; returns those spans. Raises
        AssertionError listing everything received when they do not arrive within `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while True:
                found = [span for span in self._spans if match(span)]
                left = deadline - time.monotonic()
                if len(found) >= count or left <= 0:
                    break
                self._changed.wait(left)
            if len(found) >= count:
                return found
            received = "\n  ".join(str(span) for span in self._spans) or "(none)"
            raise AssertionError(
                f"{len(found)} of {count} expected spans arrived in {timeout_s}s "
                f"({self.requests} export requests); received:\n  {received}"
            )


@contextmanager
def otlp_receiver() -> Iterator[OtlpReceiver]:
    receiver = OtlpReceiver().start()
    try:
        yield receiver
    finally:
        receiver.stop()
