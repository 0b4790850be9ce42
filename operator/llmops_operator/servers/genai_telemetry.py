"""OpenTelemetry GenAI measurements of the OpenAI endpoints: four histograms and one span per request.

Follows the OpenTelemetry semantic conventions for generative AI, version SEMCONV_VERSION (pinned: the GenAI
conventions are still "Development" and rename things between versions). The histograms are served on the
transformer's /metrics under the names OpenTelemetry's Prometheus exporter gives them (dots become underscores,
the unit `s` becomes `_seconds`, annotations like `{token}` add nothing), with the conventions' advised buckets:

| convention | Prometheus name |
|---|---|
| gen_ai.client.token.usage | gen_ai_client_token_usage (gen_ai_token_type: input, output) |
| gen_ai.client.operation.duration | gen_ai_client_operation_duration_seconds (error_type on failures) |
| gen_ai.server.time_to_first_token | gen_ai_server_time_to_first_token_seconds |
| gen_ai.server.time_per_output_token | gen_ai_server_time_per_output_token_seconds |

Every guardrail verdict that is not plain allowed (a check blocked, redacted or flagged the text, or failed
open) is also an OpenTelemetry event, `gen_ai.guardrail.result`: one log record per rule, with the policy's id
and version, the rule, its result and the direction, correlated with the current trace. The conventions up to
SEMCONV_VERSION define no guardrail event yet, so its name and `gen_ai.guardrail.*` attributes are this
runtime's own, kept in the GenAI namespace for the collectors that read it; the text that was flagged is never
in it, only the rule names, entities and character offsets.

The transformer is the model's client (token usage, operation duration: from the request's arrival to its last
byte) and the server its own clients see (time to first token: from the request's arrival to the first token the
predictor streamed; time per output token: the decode time after it, per further token). Spans go through the
OpenTelemetry API: no-ops until an OTLP endpoint is configured (observability/tracing.py).
"""

from __future__ import annotations

from typing import Any, Mapping

from opentelemetry import _logs, trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from prometheus_client import Histogram

SEMCONV_VERSION = "1.44.0"
SCHEMA_URL = f"https://opentelemetry.io/schemas/{SEMCONV_VERSION}"
PROVIDER = "llmops"
"""gen_ai.provider.name: the service is its own provider (the model runs behind this runtime)."""
LABELS = ("gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model")

TOKEN_USAGE = Histogram(
    "gen_ai_client_token_usage", "gen_ai.client.token.usage: tokens used per operation ({token}).",
    [*LABELS, "gen_ai_token_type"],
    buckets=(1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864))
OPERATION_DURATION = Histogram(
    "gen_ai_client_operation_duration_seconds", "gen_ai.client.operation.duration: one operation, end to end (s).",
    [*LABELS, "error_type"],
    buckets=(0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92))
TIME_TO_FIRST_TOKEN = Histogram(
    "gen_ai_server_time_to_first_token_seconds", "gen_ai.server.time_to_first_token: until the first token (s).",
    LABELS,
    buckets=(0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0))
TIME_PER_OUTPUT_TOKEN = Histogram(
    "gen_ai_server_time_per_output_token_seconds",
    "gen_ai.server.time_per_output_token: decode time per token after the first (s).", LABELS,
    buckets=(0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5))


def operation_of(kind: str) -> str:
    """gen_ai.operation.name for an OpenAI object kind."""
    return "chat" if kind.startswith("chat") else "text_completion"


def start_span(operation: str, model: str, parameters: Mapping[str, Any], stream: bool,
               tracer: trace.Tracer | None = None) -> Span:
    """The request's span, named `{operation} {model}` as the conventions ask; end it with `finish`."""
    tracer = tracer or trace.get_tracer("llmops_operator.servers", schema_url=SCHEMA_URL)
    attributes: dict[str, Any] = {"gen_ai.operation.name": operation, "gen_ai.provider.name": PROVIDER,
                                  "gen_ai.request.model": model, "gen_ai.request.stream": stream}
    for ours, theirs in (("maxTokens", "gen_ai.request.max_tokens"), ("temperature", "gen_ai.request.temperature"),
                         ("topP", "gen_ai.request.top_p")):
        if parameters.get(ours) is not None:
            attributes[theirs] = parameters[ours]
    if parameters.get("stop"):
        attributes["gen_ai.request.stop_sequences"] = list(parameters["stop"])
    return tracer.start_span(f"{operation} {model}", kind=SpanKind.SERVER, attributes=attributes)


def finish(span: Span, *, operation: str, model: str, response_id: str, finish_reason: str | None,
           usage: Mapping[str, int], started: float, first_token: float | None, ended: float,
           outcome: str, version: str, error_type: str | None = None) -> None:
    """Record the four histograms and close the span with the response's attributes."""
    labels = {"gen_ai_operation_name": operation, "gen_ai_provider_name": PROVIDER, "gen_ai_request_model": model}
    input_tokens, output_tokens = usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0)
    TOKEN_USAGE.labels(**labels, gen_ai_token_type="input").observe(input_tokens)
    TOKEN_USAGE.labels(**labels, gen_ai_token_type="output").observe(output_tokens)
    OPERATION_DURATION.labels(**labels, error_type=error_type or "").observe(ended - started)
    if first_token is not None:
        TIME_TO_FIRST_TOKEN.labels(**labels).observe(first_token - started)
        if output_tokens > 1:
            TIME_PER_OUTPUT_TOKEN.labels(**labels).observe((ended - first_token) / (output_tokens - 1))
    span.set_attributes({"gen_ai.response.id": response_id, "gen_ai.response.model": model,
                         "gen_ai.usage.input_tokens": input_tokens, "gen_ai.usage.output_tokens": output_tokens,
                         "llmops.guardrail.outcome": outcome, "llmops.prompt.version": version})
    if finish_reason:
        span.set_attribute("gen_ai.response.finish_reasons", [finish_reason])
    if error_type:
        span.set_attribute("error.type", error_type)
        span.set_status(Status(StatusCode.ERROR, error_type))
    span.end()


GUARDRAIL_EVENT = "gen_ai.guardrail.result"
MAX_SPANS_PER_EVENT = 20
"""Offsets listed in one event; the hit count says how many there were."""


def guardrail_events(verdict: Any, *, policy_id: str, policy_version: str, request_id: str,
                     hit_counts: Mapping[tuple[str, str], int],
                     logger: _logs.Logger | None = None) -> int:
    """Emit one `gen_ai.guardrail.result` event per rule that hit (with its effect: blocked, redacted, flagged)
    and per rule that failed open (result `error`); none for a plain allowed verdict. Returns how many."""
    logger = logger or _logs.get_logger("llmops_operator.servers", schema_url=SCHEMA_URL)
    base = {"gen_ai.guardrail.policy.id": policy_id, "gen_ai.guardrail.policy.version": policy_version,
            "gen_ai.guardrail.direction": verdict.direction, "gen_ai.provider.name": PROVIDER,
            "llmops.request.id": request_id}
    emitted = 0
    for (rule, effect), count in hit_counts.items():
        hits = [hit for hit in verdict.hits if hit.rule == rule and hit.effect == effect]
        attributes = {**base, "gen_ai.guardrail.rule": rule, "gen_ai.guardrail.result": _RESULTS[effect],
                      "gen_ai.guardrail.hits": count}
        if hits:
            attributes["gen_ai.guardrail.type"] = hits[0].type
        entities = sorted({hit.entity for hit in hits if hit.entity})
        if entities:
            attributes["gen_ai.guardrail.entities"] = entities
        spans = [f"{hit.start}-{hit.end}" for hit in hits if hit.start is not None][:MAX_SPANS_PER_EVENT]
        if spans:
            attributes["gen_ai.guardrail.spans"] = spans
        logger.emit(event_name=GUARDRAIL_EVENT, attributes=attributes)
        emitted += 1
    for error in verdict.errors:
        logger.emit(event_name=GUARDRAIL_EVENT, attributes={**base, "gen_ai.guardrail.rule": error.rule,
                                                           "gen_ai.guardrail.result": "error",
                                                           "error.type": error.error[:200]})
        emitted += 1
    return emitted


_RESULTS = {"block": "blocked", "redact": "redacted", "flag": "flagged", "drop": "dropped"}
