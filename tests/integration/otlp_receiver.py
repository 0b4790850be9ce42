"""A minimal OTLP/HTTP receiver: POST /v1/traces, protobuf bodies decoded as ExportTraceServiceRequest, and
POST /v1/logs (OpenTelemetry events), decoded as ExportLogsServiceRequest.

It runs aiohttp on its own event loop in a thread, so synchronous tests can start it, point an exporter at
`endpoint` and read `spans()`. Bodies are decoded here, not by aiohttp, so the Content-Encoding the exporter
sends (none, gzip, deflate) is checked as it arrives on the wire.
"""

from __future__ import annotations

import asyncio
import gzip
import socket
import threading
import zlib
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

PROTOBUF = "application/x-protobuf"
SPAN_KIND_CLIENT = Span.SpanKind.SPAN_KIND_CLIENT


@dataclass(frozen=True)
class ReceivedSpan:
    """One span as it arrived, with the attributes of its resource."""

    name: str
    kind: int
    trace_id: str
    span_id: str
    parent_span_id: str
    attributes: dict[str, Any]
    resource: dict[str, Any]


def decompress(body: bytes, encoding: str) -> bytes:
    """The body without its Content-Encoding; ValueError names an encoding OTLP does not use."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding == "deflate":
        return zlib.decompress(body)
    raise ValueError(f"Content-Encoding {encoding!r} is not one OTLP/HTTP exporters send (gzip, deflate)")


def value_of(value: AnyValue) -> Any:
    """The Python value of an OTLP AnyValue (scalars and arrays of scalars; enough for span attributes)."""
    field = value.WhichOneof("value")
    if field is None:
        return None
    if field == "array_value":
        return [value_of(v) for v in value.array_value.values]
    return getattr(value, field)


def attributes_of(pairs: list[KeyValue]) -> dict[str, Any]:
    return {pair.key: value_of(pair.value) for pair in pairs}


def spans_of(request: ExportTraceServiceRequest) -> list[ReceivedSpan]:
    """Every span of one export request, flattened out of its resource and scope groups."""
    return [
        ReceivedSpan(name=span.name, kind=span.kind, trace_id=span.trace_id.hex(), span_id=span.span_id.hex(),
                     parent_span_id=span.parent_span_id.hex(), attributes=attributes_of(span.attributes),
                     resource=attributes_of(group.resource.attributes))
        for group in request.resource_spans
        for scope in group.scope_spans
        for span in scope.spans
    ]


class OtlpReceiver:
    """`with OtlpReceiver() as receiver:` serves http://127.0.0.1:<free port>/v1/traces until the block ends."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._spans: list[ReceivedSpan] = []
        self._events: list[tuple[str, dict[str, Any]]] = []
        self._encodings: list[str] = []
        self._errors: list[str] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="otlp-receiver", daemon=True)
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def endpoint(self) -> str:
        """The base URL an exporter is given; the HTTP exporter posts to <endpoint>/v1/traces."""
        return f"http://127.0.0.1:{self.port}"

    def spans(self) -> list[ReceivedSpan]:
        with self._lock:
            return list(self._spans)

    def events(self) -> list[tuple[str, dict[str, Any]]]:
        """(event name, attributes) of every log record received."""
        with self._lock:
            return list(self._events)

    def encodings(self) -> list[str]:
        """The Content-Encoding of each export request received, in order ('' when none)."""
        with self._lock:
            return list(self._encodings)

    def errors(self) -> list[str]:
        """Why requests were refused (bad path, content type, encoding or body)."""
        with self._lock:
            return list(self._errors)

    async def _traces(self, request: web.Request) -> web.Response:
        encoding = request.headers.get("Content-Encoding", "")
        try:
            if request.content_type != PROTOBUF:
                raise ValueError(f"Content-Type {request.content_type!r}, expected {PROTOBUF}")
            export = ExportTraceServiceRequest.FromString(decompress(await request.read(), encoding))
        except Exception as err:  # noqa: BLE001 - any undecodable body is the exporter's fault; report it
            with self._lock:
                self._errors.append(f"{type(err).__name__}: {err}")
            return web.Response(status=400, text=str(err))
        with self._lock:
            self._encodings.append(encoding)
            self._spans.extend(spans_of(export))
        return web.Response(body=ExportTraceServiceResponse().SerializeToString(), content_type=PROTOBUF)

    async def _logs(self, request: web.Request) -> web.Response:
        try:
            export = ExportLogsServiceRequest.FromString(
                decompress(await request.read(), request.headers.get("Content-Encoding", "")))
        except Exception as err:  # noqa: BLE001 - any undecodable body is the exporter's fault; report it
            with self._lock:
                self._errors.append(f"{type(err).__name__}: {err}")
            return web.Response(status=400, text=str(err))
        records = [(r.event_name, attributes_of(list(r.attributes))) for resource in export.resource_logs
                   for scope in resource.scope_logs for r in scope.log_records]
        with self._lock:
            self._events.extend(records)
        return web.Response(body=ExportLogsServiceResponse().SerializeToString(), content_type=PROTOBUF)

    async def _start(self) -> int:
        app = web.Application()
        app.router.add_post("/v1/traces", self._traces)
        app.router.add_post("/v1/logs", self._logs)
        # Bodies reach the handler as sent, so `decompress` sees the exporter's real encoding.
        self._runner = web.AppRunner(app, auto_decompress=False, access_log=None)
        await self._runner.setup()
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        await web.SockSite(self._runner, listener).start()
        return listener.getsockname()[1]

    def __enter__(self) -> OtlpReceiver:
        self._thread.start()
        self.port = asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()
