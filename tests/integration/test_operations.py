"""Operations on the real apiserver when it is built (the emulator otherwise): a real reconcile pass (our Loop, our
API client, the chart's credentials there) feeds the metrics, the traces and the Events, and `llmops status` lists
the fleet from the live API."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry

from apiservers import REAL_WHEN_BUILT, apiserver_kind, kube, new_namespace, operator  # noqa: F401
from kube_helpers import apply_companions, eventually, example

from llmops_operator.cli.main import main as llmops
from llmops_operator.api.v1alpha1 import Guardrail, TrainingJob
from llmops_operator.controllers.base import Loop
from llmops_operator.controllers.kinds import reconciler_for
from llmops_operator.k8s import kubeconfig
from llmops_operator.k8s.client import ApiClient
from llmops_operator.k8s.resources import resource_for
from llmops_operator.observability.operator_metrics import OperatorMetrics
from llmops_operator.core.settings import Settings

APISERVERS = REAL_WHEN_BUILT  # the real apiserver when `make kube` built it, else the emulator
ROOT = Path(__file__).resolve().parents[2]
EVENTS = resource_for("v1", "Event")


@pytest.fixture
def namespace(new_namespace) -> str:
    """A fresh namespace the shared operator does not watch (it watches t-*): these tests run the passes."""
    return new_namespace("ops")


@pytest.fixture
def user_kubeconfig(apiserver_kind, apiserver) -> Path:
    """What a user runs `llmops status` with: the emulator's kubeconfig, or the real control plane's admin one."""
    return apiserver if apiserver_kind is None else apiserver_kind.plane.kubeconfig


def ready_gauge(operator: Any, labels: dict[str, str]) -> float | None:
    """llmops_ready of one object in the running operator: its registry in-process on the emulator, its metrics
    endpoint on the real apiserver (the chart's operator is a process of its own there); None when absent."""
    from prometheus_client import REGISTRY
    from prometheus_client.parser import text_string_to_metric_families

    url = getattr(operator, "metrics_url", None)
    if url is None:
        return REGISTRY.get_sample_value("llmops_ready", labels)
    text = httpx.get(url, timeout=10).text
    return next((s.value for family in text_string_to_metric_families(text) for s in family.samples
                 if s.name == "llmops_ready" and all(s.labels.get(k) == v for k, v in labels.items())), None)


@pytest.fixture(scope="module")
def spans() -> InMemorySpanExporter:
    """Spans of this process, kept in memory (installs an SDK provider once, as `tracing.configure` would). Other
    tests' passes in this process export here too: select spans by the object."""
    exporter = InMemorySpanExporter()
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter


def loop_for(resource: type, metrics: OperatorMetrics, api: ApiClient) -> Loop:
    return Loop(reconciler_for(resource), api, Settings(), metrics)


def reconcile_once(loop_of: Any, body: dict[str, Any]) -> dict[str, Any] | None:
    """One pass of `loop_of(api)` over `body` with a fresh client, as kopf's handler would run it."""
    async def one_pass() -> dict[str, Any] | None:
        async with ApiClient(kubeconfig.load()) as api:
            return await loop_of(api).reconcile(body)
    return asyncio.run(one_pass())


def sample(registry: CollectorRegistry, metric: str, **labels: str) -> float | None:
    return registry.get_sample_value(metric, labels)


def events_of(kube, namespace: str, name: str) -> list[dict[str, Any]]:
    return [e for e in kube.list(EVENTS, namespace) if e["involvedObject"]["name"] == name]


def test_a_pass_counts_sets_gauges_posts_one_event_and_traces(kube, namespace, spans):
    spans.clear()
    registry = CollectorRegistry()
    metrics = OperatorMetrics(registry)
    apply_companions(kube, "Guardrail", namespace)
    body = kube.apply(example("Guardrail"), namespace)
    patch = reconcile_once(lambda api: loop_for(Guardrail, metrics, api), body)
    assert patch is not None and patch["phase"] == "Ready"
    labels = {"kind": "Guardrail", "namespace": namespace, "name": body["metadata"]["name"]}
    assert sample(registry, "llmops_reconciles_total", kind="Guardrail", outcome="written") == 1
    assert sample(registry, "llmops_reconcile_duration_seconds_count", kind="Guardrail") == 1
    assert sample(registry, "llmops_reconciles_in_flight", kind="Guardrail") == 0
    assert sample(registry, "llmops_ready", **labels) == 1
    [event] = events_of(kube, namespace, labels["name"])
    ready = next(c for c in patch["conditions"] if c["type"] == "Ready")
    assert (event["type"], event["reason"]) == ("Normal", ready["reason"])
    assert "phase (none) -> Ready" in event["message"] and event["involvedObject"]["kind"] == "Guardrail"

    [reconcile] = [s for s in spans.get_finished_spans()
                   if s.name == "reconcile Guardrail" and s.attributes.get("k8s.namespace.name") == namespace]
    assert reconcile.attributes["llmops.kind"] == "Guardrail"
    assert reconcile.attributes["llmops.name"] == labels["name"]
    assert reconcile.attributes["k8s.namespace.name"] == namespace
    requests = [s for s in spans.get_finished_spans() if s.parent is not None
                and s.parent.span_id == reconcile.context.span_id]
    assert any(s.attributes["http.request.method"] == "PATCH" and s.attributes["url.path"].endswith("/status")
               for s in requests), [s.name for s in requests]

    # A second pass over the stored object changes nothing: no write, no second Event.
    stored = kube.get(resource_for("llmops.dev/v1alpha1", "Guardrail"), namespace, labels["name"])
    assert reconcile_once(lambda api: loop_for(Guardrail, metrics, api), stored) is None
    assert sample(registry, "llmops_reconciles_total", kind="Guardrail", outcome="unchanged") == 1
    assert len(events_of(kube, namespace, labels["name"])) == 1

    # A pass over the body from before the status write (a stale watch event) repeats the transition: it is
    # counted on the same Event, not listed twice.
    reconcile_once(lambda api: loop_for(Guardrail, metrics, api), body)
    [again] = events_of(kube, namespace, labels["name"])
    assert again["metadata"]["name"] == event["metadata"]["name"] and again["count"] == 2


def test_an_invalid_spec_is_counted_and_warned_and_gauges_go_on_delete(kube, namespace):
    registry = CollectorRegistry()
    metrics = OperatorMetrics(registry)
    manifest = example("TrainingJob")
    manifest["spec"]["resources"] = {**manifest["spec"].get("resources", {}), "gpusPerWorker": 1,
                                     "gpuType": "no-such-gpu"}
    body = kube.apply(manifest, namespace)
    loops: list[Loop] = []
    reconcile_once(lambda api: loops.append(loop_for(TrainingJob, metrics, api)) or loops[-1], body)
    name = body["metadata"]["name"]
    assert sample(registry, "llmops_reconciles_total", kind="TrainingJob", outcome="invalid") == 1
    assert sample(registry, "llmops_ready", kind="TrainingJob", namespace=namespace, name=name) == 0
    [event] = events_of(kube, namespace, name)
    assert (event["type"], event["reason"]) == ("Warning", "InvalidSpec")
    assert "gpuType" in event["message"]

    loops[0].deleted(body)  # what the operator's DELETED handler does
    assert sample(registry, "llmops_ready", kind="TrainingJob", namespace=namespace, name=name) is None
    assert sample(registry, "llmops_cost_accrued", kind="TrainingJob", namespace=namespace, name=name) is None


def test_llmops_status_lists_the_fleet(kube, namespace, user_kubeconfig, capsys):
    apply_companions(kube, "Guardrail", namespace)
    guardrail = kube.apply(example("Guardrail"), namespace)
    registry = CollectorRegistry()
    metrics = OperatorMetrics(registry)
    reconcile_once(lambda api: loop_for(Guardrail, metrics, api), guardrail)
    assert llmops(["status", "-n", namespace, "--kubeconfig", str(user_kubeconfig)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:5] == ["NAMESPACE", "KIND", "NAME", "READY", "PHASE"]
    [row] = [line.split() for line in lines[1:]]
    assert row[:5] == [namespace, "Guardrail", guardrail["metadata"]["name"], "True", "Ready"]

    assert llmops(["status", "-A", "--kubeconfig", str(user_kubeconfig)]) == 0
    assert namespace in capsys.readouterr().out


def test_llmops_status_says_when_the_namespace_is_empty(kube, namespace, user_kubeconfig, capsys):
    assert llmops(["status", "-n", namespace, "--kubeconfig", str(user_kubeconfig)]) == 0
    assert capsys.readouterr().out.strip() == f"No llmops.dev objects in namespace {namespace}."


def test_llmops_status_names_an_unreachable_server(tmp_path, capsys):
    config = tmp_path / "config"
    config.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "x",
        "clusters": [{"name": "x", "cluster": {"server": "http://127.0.0.1:9"}}],
        "contexts": [{"name": "x", "context": {"cluster": "x", "user": "x"}}], "users": [{"name": "x", "user": {}}]}))
    assert llmops(["status", "-A", "--kubeconfig", str(config)]) == 1
    assert "cannot reach the API server at http://127.0.0.1:9" in capsys.readouterr().err


def test_the_running_operator_posts_events_and_drops_gauges_on_delete(kube, operator, new_namespace):
    watched = new_namespace("t")
    apply_companions(kube, "Guardrail", watched)
    guardrail = kube.apply(example("Guardrail"), watched)
    name = guardrail["metadata"]["name"]
    labels = {"kind": "Guardrail", "namespace": watched, "name": name}
    eventually(lambda: any(e["reason"] != "Logging" and e.get("source", {}).get("component") == "llmops-operator"
                           for e in events_of(kube, watched, name)), timeout=60,
               what="a transition Event (the first test to ask for the operator waits for it to start)")
    eventually(lambda: ready_gauge(operator, labels) == 1, what="the Ready gauge")
    kube.delete(resource_for("llmops.dev/v1alpha1", "Guardrail"), watched, name)
    eventually(lambda: ready_gauge(operator, labels) is None, what="the gauge removed")
