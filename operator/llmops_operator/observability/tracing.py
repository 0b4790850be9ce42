"""OpenTelemetry traces: one span per reconcile pass, one child span per Kubernetes API request; and the events
other parts emit (the guardrail transformer's `gen_ai.guardrail.result`), exported beside them.

Off by default: until `configure` installs an exporter, OpenTelemetry's API hands out no-op spans, so the
cost is a function call. `llmops run` calls `configure`; an endpoint in LLMOPS_OTEL_ENDPOINT or the standard
OTEL_EXPORTER_OTLP_ENDPOINT turns on an OTLP exporter when `opentelemetry-exporter-otlp` is installed
(`pip install 'llmops-operator[otlp]'`), else one log line says why traces stay off.
"""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from typing import Any, Iterator

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

log = logging.getLogger("llmops.tracing")

INSTRUMENTATION = "llmops_operator"
STANDARD_ENDPOINT = "OTEL_EXPORTER_OTLP_ENDPOINT"


def tracer() -> trace.Tracer:
    return trace.get_tracer(INSTRUMENTATION)


@contextmanager
def reconcile_span(kind: str, namespace: str, name: str, generation: int | None) -> Iterator[Span]:
    """The span of one reconcile pass; an exception marks it as an error and propagates."""
    attributes = {"llmops.kind": kind, "k8s.namespace.name": namespace, "llmops.name": name}
    if generation is not None:
        attributes["llmops.generation"] = generation
    with tracer().start_as_current_span(f"reconcile {kind}", kind=SpanKind.INTERNAL, attributes=attributes) as span:
        yield span


@contextmanager
def request_span(method: str, path: str) -> Iterator[Span]:
    """The span of one API request (a child of the reconcile span when there is one)."""
    attributes = {"http.request.method": method, "url.path": path}
    with tracer().start_as_current_span(f"{method} {path}", kind=SpanKind.CLIENT, attributes=attributes) as span:
        yield span


def record_response(span: Span, status: int) -> None:
    span.set_attribute("http.response.status_code", status)
    if status >= 400:
        span.set_status(Status(StatusCode.ERROR, f"HTTP {status}"))


def endpoint_of(configured: str | None, environ: dict[str, str] | None = None) -> str | None:
    """LLMOPS_OTEL_ENDPOINT wins over the standard variable; None: tracing stays off."""
    environ = os.environ if environ is None else environ
    return configured or environ.get(STANDARD_ENDPOINT) or None


def _otlp_exporter(endpoint: str, from_standard_variable: bool) -> Any:
    """The OTLP/HTTP exporter, else OTLP/gRPC; ImportError when neither is installed."""
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter() if from_standard_variable else OTLPSpanExporter(endpoint=endpoint)
    # The HTTP exporter appends /v1/traces only to the standard variable's value; say it for ours.
    return OTLPSpanExporter() if from_standard_variable else OTLPSpanExporter(
        endpoint=endpoint.rstrip("/") + "/v1/traces")


def configure(endpoint: str | None, service_name: str) -> bool:
    """Install an OTLP exporter for `endpoint` (or the standard variable); True when traces are exported."""
    target = endpoint_of(endpoint)
    if target is None:
        return False
    try:
        exporter = _otlp_exporter(target, from_standard_variable=endpoint is None)
    except ImportError:
        log.warning("tracing: an OTLP endpoint is set (%s) but opentelemetry-exporter-otlp is not installed; "
                    "traces stay off (pip install 'llmops-operator[otlp]')", target)
        return False
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create({"service.name": service_name})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    _export_events(target, endpoint is None, resource)
    log.info("tracing: exporting spans and events to %s", target)
    return True


def _export_events(endpoint: str, from_standard_variable: bool, resource: Any) -> None:
    """OpenTelemetry events (log records with an event name, such as the transformer's
    `gen_ai.guardrail.result`) go to the same collector as the spans."""
    from opentelemetry import _logs
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor

    try:
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
        exporter = OTLPLogExporter() if from_standard_variable else OTLPLogExporter(
            endpoint=endpoint.rstrip("/") + "/v1/logs")
    except ImportError:
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
        exporter = OTLPLogExporter() if from_standard_variable else OTLPLogExporter(endpoint=endpoint)
    provider = LoggerProvider(resource=resource)
    provider.add_log_record_processor(BatchLogRecordProcessor(exporter))
    _logs.set_logger_provider(provider)
