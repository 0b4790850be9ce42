"""The GenAI measurements follow the pinned OpenTelemetry conventions: span name and attributes, histograms."""

from __future__ import annotations

import pytest

pytest.importorskip("opentelemetry.sdk")

from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402
from prometheus_client import REGISTRY  # noqa: E402

from llmops_operator.servers import genai_telemetry as genai  # noqa: E402


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_a_chat_request_is_one_span_and_four_histograms_in_the_conventions_names():
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    labels = {"gen_ai_operation_name": "chat", "gen_ai_provider_name": "llmops", "gen_ai_request_model": "m-test"}
    before = sample("gen_ai_server_time_per_output_token_seconds_count", **labels)

    span = genai.start_span("chat", "m-test", {"maxTokens": 16, "temperature": 0.5, "stop": ["\n"]}, True,
                            tracer=provider.get_tracer("t"))
    genai.finish(span, operation="chat", model="m-test", response_id="chatcmpl-1", finish_reason="stop",
                 usage={"prompt_tokens": 7, "completion_tokens": 5}, started=10.0, first_token=10.2, ended=10.6,
                 outcome="redacted", version="v1")

    [recorded] = exporter.get_finished_spans()
    assert recorded.name == "chat m-test"
    assert dict(recorded.attributes) == {
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "llmops", "gen_ai.request.model": "m-test",
        "gen_ai.request.stream": True, "gen_ai.request.max_tokens": 16, "gen_ai.request.temperature": 0.5,
        "gen_ai.request.stop_sequences": ("\n",), "gen_ai.response.id": "chatcmpl-1",
        "gen_ai.response.model": "m-test", "gen_ai.usage.input_tokens": 7, "gen_ai.usage.output_tokens": 5,
        "gen_ai.response.finish_reasons": ("stop",), "llmops.guardrail.outcome": "redacted",
        "llmops.prompt.version": "v1"}
    assert sample("gen_ai_client_token_usage_sum", **labels, gen_ai_token_type="input") >= 7
    assert sample("gen_ai_server_time_to_first_token_seconds_sum", **labels) == pytest.approx(0.2)
    assert sample("gen_ai_server_time_per_output_token_seconds_sum", **labels) == pytest.approx(0.1)
    assert sample("gen_ai_server_time_per_output_token_seconds_count", **labels) == before + 1
    assert sample("gen_ai_client_operation_duration_seconds_count", **labels, error_type="") == 1


def test_a_failed_operation_carries_its_error_type():
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    span = genai.start_span("text_completion", "m-err", {}, False, tracer=provider.get_tracer("t"))
    genai.finish(span, operation="text_completion", model="m-err", response_id="cmpl-1", finish_reason=None,
                 usage={}, started=1.0, first_token=None, ended=2.0, outcome="error", version="none",
                 error_type="http_503")
    [recorded] = exporter.get_finished_spans()
    assert recorded.attributes["error.type"] == "http_503" and not recorded.status.is_ok
    assert sample("gen_ai_client_operation_duration_seconds_count", gen_ai_operation_name="text_completion",
                  gen_ai_provider_name="llmops", gen_ai_request_model="m-err", error_type="http_503") == 1
