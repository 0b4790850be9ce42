"""Operator metrics, transition Events, tracing settings and the Grafana dashboard the chart ships."""

from __future__ import annotations

import json
import logging
import sys
import re
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry

from llmops_operator.observability import tracing
from llmops_operator.controllers.events import transition_event
from llmops_operator.observability.operator_metrics import OperatorMetrics, object_values

helm = pytest.importorskip("helm_python")

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "llmops-operator"
NOW = datetime(2026, 5, 1, 12, 0, tzinfo=timezone.utc)


def status(phase: str, ready: str, reason: str = "Ready", message: str = "", **blocks) -> dict:
    return {"phase": phase, "conditions": [{"type": "Ready", "status": ready, "reason": reason, "message": message}],
            **blocks}


def body(previous: dict | None = None) -> dict:
    return {"apiVersion": "llmops.dev/v1alpha1", "kind": "TrainingJob",
            "metadata": {"name": "tj", "namespace": "ml", "uid": "u-1", "generation": 1},
            **({"status": previous} if previous is not None else {})}


# ----- metrics ----------------------------------------------------------------------------------------------

def test_object_values_follow_the_status_blocks():
    full = status("Running", "False", cost={"accrued": 0.4, "hourlyRate": 1.2},
                  drift={"score": 0.3}, safety={"score": 0.97, "evaluated": 50})
    assert object_values(full) == {"ready": 0.0, "cost_accrued": 0.4, "cost_hourly_rate": 1.2,
                                   "drift_score": 0.3, "safety_score": 0.97}
    # A self-test-only safety block (nothing evaluated live yet) has no score to show.
    assert object_values(status("Ready", "True", safety={"evaluated": 0}))["safety_score"] is None
    assert object_values({"phase": "Pending"})["ready"] is None


def test_gauges_are_set_then_removed_when_a_block_disappears_or_the_object_goes():
    registry = CollectorRegistry()
    metrics = OperatorMetrics(registry)
    labels = {"kind": "InferenceService", "namespace": "ml", "name": "svc"}
    metrics.set_object("InferenceService", "ml", "svc", status("Ready", "True", drift={"score": 0.1}))
    assert registry.get_sample_value("llmops_drift_score", labels) == 0.1
    assert registry.get_sample_value("llmops_ready", labels) == 1.0
    metrics.set_object("InferenceService", "ml", "svc", status("Ready", "True"))
    assert registry.get_sample_value("llmops_drift_score", labels) is None
    metrics.forget_object("InferenceService", "ml", "svc")
    assert registry.get_sample_value("llmops_ready", labels) is None


def test_a_pass_that_raises_counts_as_error_and_leaves_nothing_in_flight():
    registry = CollectorRegistry()
    metrics = OperatorMetrics(registry)
    with pytest.raises(RuntimeError):
        with metrics.timed("FeatureView"):
            assert registry.get_sample_value("llmops_reconciles_in_flight", {"kind": "FeatureView"}) == 1
            raise RuntimeError("API down")
    assert registry.get_sample_value("llmops_reconciles_total", {"kind": "FeatureView", "outcome": "error"}) == 1
    assert registry.get_sample_value("llmops_reconciles_in_flight", {"kind": "FeatureView"}) == 0


def test_an_invalid_spec_is_its_own_outcome():
    registry = CollectorRegistry()
    metrics = OperatorMetrics(registry)
    with metrics.timed("TrainingJob") as record:
        record.status, record.written = status("Invalid", "False", "InvalidSpec"), True
    assert registry.get_sample_value("llmops_reconciles_total", {"kind": "TrainingJob", "outcome": "invalid"}) == 1


# ----- events -----------------------------------------------------------------------------------------------

def test_no_event_when_neither_phase_nor_ready_moves():
    same = status("Running", "Unknown", "Running", "step 4/10")
    assert transition_event(body(same), status("Running", "Unknown", "Running", "step 5/10"), NOW) is None


def test_a_ready_flip_is_named_by_the_ready_reason():
    event = transition_event(body(status("Running", "Unknown", "Running")),
                             status("Succeeded", "True", "Succeeded", "the Ray job finished"), NOW)
    assert (event["reason"], event["type"]) == ("Succeeded", "Normal")
    assert event["message"] == "phase Running -> Succeeded; Ready Unknown -> True: the Ray job finished"
    assert event["involvedObject"] == {"apiVersion": "llmops.dev/v1alpha1", "kind": "TrainingJob", "name": "tj",
                                       "namespace": "ml", "uid": "u-1"}
    assert event["metadata"]["namespace"] == "ml" and event["metadata"]["name"].startswith("tj.")
    again = transition_event(body(status("Running", "Unknown", "Running")),
                             status("Succeeded", "True", "Succeeded", "the Ray job finished"), NOW)
    assert again["metadata"]["name"] == event["metadata"]["name"], "the same Event aggregates under one name"
    other = transition_event(body(status("Running", "Unknown", "Running")),
                             status("Failed", "False", "DeadlineExceeded", "ran past maxDuration"), NOW)
    assert other["metadata"]["name"] != event["metadata"]["name"]


def test_a_phase_change_alone_is_named_by_the_phase_and_failures_warn():
    moved = transition_event(body(status("Pending", "Unknown", "Pending")), status("Running", "Unknown", "Running"),
                             NOW)
    assert (moved["reason"], moved["type"]) == ("Running", "Normal")
    failed = transition_event(body(status("Running", "Unknown", "Running")),
                              status("Failed", "False", "DeadlineExceeded", "ran past maxDuration"), NOW)
    assert (failed["reason"], failed["type"]) == ("DeadlineExceeded", "Warning")


def test_the_first_status_is_a_transition():
    event = transition_event(body(), status("Invalid", "False", "InvalidSpec", "spec.x: bad"), NOW)
    assert event["reason"] == "InvalidSpec" and event["message"].startswith("phase (none) -> Invalid")


# ----- tracing settings -------------------------------------------------------------------------------------

def test_tracing_is_off_without_an_endpoint(monkeypatch):
    monkeypatch.delenv(tracing.STANDARD_ENDPOINT, raising=False)
    assert tracing.endpoint_of(None, {}) is None
    assert tracing.configure(None, "llmops-operator") is False


def test_the_operator_s_endpoint_wins_over_the_standard_variable():
    environ = {tracing.STANDARD_ENDPOINT: "http://collector:4318"}
    assert tracing.endpoint_of(None, environ) == "http://collector:4318"
    assert tracing.endpoint_of("http://mine:4318", environ) == "http://mine:4318"


def test_an_endpoint_without_the_exporter_says_so(caplog, monkeypatch):
    # As if neither OTLP exporter were installed: a None entry in sys.modules makes its import raise ImportError.
    for module in ("opentelemetry.exporter.otlp.proto.http.trace_exporter",
                   "opentelemetry.exporter.otlp.proto.grpc.trace_exporter"):
        monkeypatch.setitem(sys.modules, module, None)
    with caplog.at_level(logging.WARNING, logger="llmops.tracing"):
        assert tracing.configure("http://collector:4318", "llmops-operator") is False
    assert "opentelemetry-exporter-otlp is not installed" in caplog.text
    assert "http://collector:4318" in caplog.text


# ----- the Grafana dashboard --------------------------------------------------------------------------------

def render(values: dict | None = None) -> dict[str, str]:
    return helm.Chart.load(str(CHART)).render(values, name="llmops-operator", namespace="llmops-system")


def exported_names() -> set[str]:
    """Every sample name the operator exports, read from a registry after one pass and one object."""
    registry = CollectorRegistry()
    metrics = OperatorMetrics(registry)
    with metrics.timed("TrainingJob") as record:
        record.status = status("Running", "True", cost={"accrued": 1.0, "hourlyRate": 2.0}, drift={"score": 0.1},
                               safety={"score": 0.9, "evaluated": 1})
    metrics.set_object("TrainingJob", "ml", "tj", record.status)
    return {s.name for family in registry.collect() for s in family.samples}


PROMQL_WORDS = {"sum", "by", "count", "or", "vector", "rate", "histogram_quantile", "le", "kind", "outcome",
                "namespace", "name", "label_values", "and", "on"}


def metric_names(expr: str) -> set[str]:
    """Identifiers in a PromQL expression that are not functions, keywords, labels or label values."""
    without_strings = re.sub(r'"[^"]*"', "", expr)
    without_ranges = re.sub(r"\[[^\]]*\]", "", without_strings)
    without_matchers = re.sub(r"\{[^}]*\}", "", without_ranges)
    return {w for w in re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", without_matchers) if w not in PROMQL_WORDS}


def test_dashboard_renders_only_when_enabled_with_the_sidecar_label():
    assert not [t for p, t in render().items() if p.endswith("configmap-grafana-dashboard.yaml") and t.strip()]
    rendered = render({"grafana": {"dashboards": {"enabled": True, "annotations": {"grafana_folder": "LLMOps"}}}})
    [text] = [t for p, t in rendered.items() if p.endswith("configmap-grafana-dashboard.yaml")]
    configmap = yaml.safe_load(text)
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert configmap["metadata"]["annotations"] == {"grafana_folder": "LLMOps"}
    dashboard = json.loads(configmap["data"]["llmops-fleet.json"])
    assert dashboard == json.loads((CHART / "dashboards" / "llmops-fleet.json").read_text())


def test_chart_with_health_checks_and_dashboard_lints_clean():
    values = {"argocd": {"healthChecks": {"enabled": True}}, "grafana": {"dashboards": {"enabled": True}}}
    report = helm.lint(str(CHART), values, strict=True)
    assert report["errors"] == [], report
    notes = next(t for p, t in render(values).items() if p.endswith("NOTES.txt"))
    assert "llmops-operator-argocd-health" in notes and "llmops-operator-dashboards" in notes


def test_dashboard_queries_only_metrics_the_operator_exports():
    dashboard = json.loads((CHART / "dashboards" / "llmops-fleet.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    exprs += [v["query"]["query"] for v in dashboard["templating"]["list"] if v["type"] == "query"]
    used = set().union(*(metric_names(e) for e in exprs))
    assert used, "the dashboard queries something"
    assert used <= exported_names(), used - exported_names()
    for name in ("llmops_cost_accrued", "llmops_drift_score", "llmops_safety_score", "llmops_ready",
                 "llmops_reconciles_total", "llmops_reconcile_duration_seconds_bucket", "llmops_reconciles_in_flight"):
        assert name in used, f"the dashboard shows {name}"
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])


def test_metric_names_sees_through_promql():
    assert metric_names('sum by (kind) (rate(llmops_x_total{kind=~"$kind"}[5m])) or vector(0)') == {"llmops_x_total"}
