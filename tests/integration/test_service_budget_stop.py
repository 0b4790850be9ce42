"""An InferenceService's budget on the API emulator: real reconcile passes (our Loop, reducers and client) of a
service priced by the catalog, whose spend crosses a tiny limit with action Stop, and resumes once it is raised."""

from __future__ import annotations

import time
from typing import Any

import pytest

from apiservers import REAL_WHEN_BUILT, apiserver_kind, kube, namespace, new_namespace, operator  # noqa: F401
from kube_helpers import condition, reconcile_once

from llmops_operator.api.v1alpha1 import InferenceService
from llmops_operator.builders.kserve import STOP_ANNOTATION
from llmops_operator.k8s.resources import resource_for

SERVICE = resource_for("llmops.dev/v1alpha1", "InferenceService")
KSERVE = resource_for("serving.kserve.io/v1beta1", "InferenceService")
EVENTS = resource_for("v1", "Event")

APISERVERS = REAL_WHEN_BUILT  # the real apiserver when `make kube` built it, else the emulator


@pytest.fixture
def namespace(new_namespace) -> str:
    return new_namespace("sb")


def gpu_service(limit: float) -> dict[str, Any]:
    """One H100 at the replica floor: about 4.14 USD an hour in the default catalog, 0.001 USD in a second."""
    return {"apiVersion": "llmops.dev/v1alpha1", "kind": "InferenceService", "metadata": {"name": "assistant"},
            "spec": {"model": {"uri": "pvc://llmops-models/assistant"},
                     "resources": {"gpus": 1, "gpuType": "nvidia-h100-80gb"},
                     "budget": {"limit": limit, "period": "720h", "action": "Stop"}}}


def stop_annotation(kube, namespace: str, name: str) -> str | None:
    child = kube.get(KSERVE, namespace, name)
    return ((child["metadata"].get("annotations")) or {}).get(STOP_ANNOTATION)


def test_a_spent_budget_stops_the_service_and_a_raised_limit_resumes_it(kube, namespace):
    kube.apply(gpu_service(limit=0.002), namespace)
    first = reconcile_once(kube, InferenceService, namespace, "assistant")["status"]
    child = first["kserveService"]
    assert first["cost"]["spent"] == 0.0 and first["cost"]["budget"] == 0.002
    assert condition({"status": first}, "BudgetExceeded")["status"] == "False"
    assert stop_annotation(kube, namespace, child) is None

    time.sleep(2.5)  # two seconds and more at ~4.14 USD/h: past the 0.002 limit
    stopped = reconcile_once(kube, InferenceService, namespace, "assistant")["status"]
    assert stopped["cost"]["spent"] >= 0.002
    assert stopped["phase"] == "Stopped"
    ready = condition({"status": stopped}, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "BudgetExceeded")
    assert "of the 0.002 budget" in ready["message"]
    assert condition({"status": stopped}, "BudgetExceeded")["status"] == "True"
    assert stop_annotation(kube, namespace, child) == "true"
    budget_events = [e for e in kube.list(EVENTS, namespace) if e["reason"] == "BudgetExceeded"]
    assert budget_events and all(e["type"] == "Warning" for e in budget_events)
    assert any("0.002" in e["message"] for e in budget_events)

    # Stopped: nothing accrues, and the next pass posts no second budget Event.
    time.sleep(1.5)
    still = reconcile_once(kube, InferenceService, namespace, "assistant")["status"]
    assert still["cost"]["spent"] == stopped["cost"]["spent"] and still["phase"] == "Stopped"
    assert len([e for e in kube.list(EVENTS, namespace) if e["reason"] == "BudgetExceeded"]) == len(budget_events)

    # The owner raises the limit in Git; the next pass lifts the stop.
    kube.apply(gpu_service(limit=50.0), namespace)
    resumed = reconcile_once(kube, InferenceService, namespace, "assistant")["status"]
    assert resumed["phase"] != "Stopped"
    assert condition({"status": resumed}, "BudgetExceeded")["status"] == "False"
    assert condition({"status": resumed}, "Ready")["reason"] != "BudgetExceeded"
    assert stop_annotation(kube, namespace, child) is None
