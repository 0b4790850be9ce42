"""Drift -> retrain on the API emulator: real reconcile passes (our Loop, reducers and client) of a FeatureView
whose runtime report says its features drifted; the FineTune the loop creates is a real object in the API."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml

from apiservers import REAL_WHEN_BUILT, apiserver_kind, kube, namespace, new_namespace, operator  # noqa: F401
from kube_helpers import condition, example, reconcile_once

from llmops_operator.builders.labels import RETRAINED_FROM
from llmops_operator.builders.progress import PROGRESS_KEY, progress_configmap_name
from llmops_operator.core.contract import parse
from llmops_operator.api.v1alpha1 import FeatureView, InferenceService
from llmops_operator.k8s.resources import resource_for

ROOT = Path(__file__).resolve().parents[2]
FEATUREVIEW = resource_for("llmops.dev/v1alpha1", "FeatureView")
FINETUNE = resource_for("llmops.dev/v1alpha1", "FineTune")
CONFIGMAP = resource_for("v1", "ConfigMap")
EVENTS = resource_for("v1", "Event")

APISERVERS = REAL_WHEN_BUILT  # the real apiserver when `make kube` built it, else the emulator


@pytest.fixture
def namespace(new_namespace) -> str:
    return new_namespace("rt")


def report_drift(kube, namespace: str, name: str, evaluated: datetime) -> None:
    """What the materialize runtime writes to the view's progress ConfigMap after measuring drift."""
    drift = {"metric": "psi", "score": 0.41, "threshold": 0.2, "drifted": True, "feature": "conv_rate",
             "evaluatedAt": evaluated.strftime("%Y-%m-%dT%H:%M:%SZ")}
    report = {"data": {PROGRESS_KEY: json.dumps({"drift": drift})}}
    view = parse(FeatureView, kube.get(FEATUREVIEW, namespace, name))
    kube.patch(CONFIGMAP, namespace, progress_configmap_name(view), report)


def runs(kube, namespace: str, name: str) -> list[dict[str, Any]]:
    return kube.list(FINETUNE, namespace, f"{RETRAINED_FROM}={name}")


def test_drift_creates_one_finetune_per_evaluation_then_cools_down(kube, namespace):
    template = {k: v for k, v in example("FineTune").items() if k != "metadata"}
    kube.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "retrain-ft"},
                "data": {"manifest.yaml": yaml.safe_dump(template)}}, namespace)
    view = example("FeatureView")
    view["spec"]["retrain"] = {"template": "retrain-ft", "cooldown": "1h", "maxRuns": 2}
    kube.apply(view, namespace)
    name = view["metadata"]["name"]

    status = reconcile_once(kube, FeatureView, namespace, name)["status"]
    assert condition({"status": status}, "Retraining")["reason"] == "NoDrift"
    assert "retrain" not in status and runs(kube, namespace, name) == []

    report_drift(kube, namespace, name, datetime.now(timezone.utc) - timedelta(seconds=5))
    before = kube.get(FEATUREVIEW, namespace, name)
    status = reconcile_once(kube, FeatureView, namespace, name)["status"]
    [run] = runs(kube, namespace, name)
    assert run["metadata"]["name"].startswith(f"{name}-retrain-") and run["spec"]["method"] == "lora"
    assert run["metadata"]["ownerReferences"][0]["name"] == name
    assert run["metadata"]["ownerReferences"][0]["controller"] is False
    assert status["retrain"]["runs"] == 1 and status["retrain"]["lastRun"] == run["metadata"]["name"]
    retraining = condition({"status": status}, "Retraining")
    assert (retraining["status"], retraining["reason"]) == ("True", "RetrainTriggered")
    events = [e for e in kube.list(EVENTS, namespace) if e["reason"] == "RetrainTriggered"]
    assert len(events) == 1 and run["metadata"]["name"] in events[0]["message"]

    # The same evaluation again, from the live object and from the stale body an earlier watch event carried
    # (status not yet naming the run): no second run either way.
    reconcile_once(kube, FeatureView, namespace, name)
    status = reconcile_once(kube, FeatureView, namespace, name, body=before)["status"]
    assert len(runs(kube, namespace, name)) == 1 and status["retrain"]["runs"] == 1

    # A newer drift evaluation inside the cooldown waits.
    report_drift(kube, namespace, name, datetime.now(timezone.utc) + timedelta(seconds=1))
    status = reconcile_once(kube, FeatureView, namespace, name)["status"]
    assert len(runs(kube, namespace, name)) == 1
    # While the run has not finished, Retraining stays True and says what comes next.
    busy = condition({"status": status}, "Retraining")
    assert (busy["status"], busy["reason"]) == ("True", "RunInProgress")
    assert run["metadata"]["name"] in busy["message"] and "the next may start after" in busy["message"]
    finished = {"status": {"phase": "Succeeded", "conditions": [
        {"type": "Succeeded", "status": "True", "reason": "RayJobSucceeded", "message": "done",
         "lastTransitionTime": "2026-01-01T00:00:00Z"}]}}
    kube.patch(FINETUNE, namespace, run["metadata"]["name"], finished, subresource="status")
    status = reconcile_once(kube, FeatureView, namespace, name)["status"]
    cooling = condition({"status": status}, "Retraining")
    assert (cooling["status"], cooling["reason"]) == ("False", "CoolingDown")


def test_an_inference_service_without_live_drift_creates_nothing_and_says_why(kube, namespace):
    service = example("InferenceService")
    service["spec"]["retrain"] = {"template": "absent"}
    kube.apply(service, namespace)
    name = service["metadata"]["name"]
    status = reconcile_once(kube, InferenceService, namespace, name)["status"]
    retraining = condition({"status": status}, "Retraining")
    assert (retraining["status"], retraining["reason"]) == ("False", "NoDrift")
    assert "retrain" not in status and runs(kube, namespace, name) == []
