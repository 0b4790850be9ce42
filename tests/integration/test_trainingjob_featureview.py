"""A TrainingJob reading a feature service, on the API emulator: real reconcile passes (our Loop, builders and
reducers) wait for its FeatureView, then render a RayJob whose run config carries the view's Feast store."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml

from apiservers import REAL_WHEN_BUILT, apiserver_kind, kube, namespace, new_namespace, operator  # noqa: F401
from kube_helpers import condition, example, reconcile_once

from llmops_operator.api.v1alpha1 import FeatureView, TrainingJob
from llmops_operator.builders.feast import REPO_KEY
from llmops_operator.builders.runconfig import RUN_CONFIG_ENV
from llmops_operator.k8s.resources import resource_for
from llmops_sandbox.standins.jobs import succeeded_status

ROOT = Path(__file__).resolve().parents[2]
JOB = resource_for("batch/v1", "Job")
RAYJOB = resource_for("ray.io/v1", "RayJob")
VIEW = "driver-stats"

APISERVERS = REAL_WHEN_BUILT  # the real apiserver when `make kube` built it, else the emulator


@pytest.fixture
def namespace(new_namespace) -> str:
    return new_namespace("fs")


def feature_service_job() -> dict[str, Any]:
    job = example("TrainingJob")
    job["spec"]["dataset"] = {"featureService": {"featureView": {"name": VIEW}, "service": "driver_stats",
                                                 "entitiesUri": "pvc://llmops-data/features/trips.parquet",
                                                 "label": "completed"}}
    return job


def finish_jobs(kube, namespace: str) -> None:
    """What the Job controller writes when the apply and materialize Jobs succeed (all of it: the real apiserver
    refuses a Complete condition without its start and completion times and SuccessCriteriaMet)."""
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    for job in kube.list(JOB, namespace):
        kube.patch(JOB, namespace, job["metadata"]["name"], {"status": succeeded_status(now, 0, now)},
                   subresource="status")


def run_config(rayjob: dict[str, Any]) -> dict[str, Any]:
    return json.loads(yaml.safe_load(rayjob["spec"]["runtimeEnvYAML"])["env_vars"][RUN_CONFIG_ENV])


def test_the_job_waits_for_its_feature_view_then_carries_its_store(kube, namespace):
    job = feature_service_job()
    kube.apply(job, namespace)
    name = job["metadata"]["name"]

    status = reconcile_once(kube, TrainingJob, namespace, name)["status"]
    dataset = condition({"status": status}, "DatasetReady")
    assert (dataset["status"], dataset["reason"]) == ("False", "FeatureViewNotFound")
    assert f"FeatureView {VIEW!r} does not exist" in dataset["message"]
    assert condition({"status": status}, "Ready")["status"] == "False" and status["phase"] == "Waiting"
    assert kube.list(RAYJOB, namespace) == []

    kube.apply(example("FeatureView"), namespace)
    reconcile_once(kube, FeatureView, namespace, VIEW)
    status = reconcile_once(kube, TrainingJob, namespace, name)["status"]
    dataset = condition({"status": status}, "DatasetReady")
    assert (dataset["status"], dataset["reason"]) == ("False", "FeatureViewNotReady")
    assert f"waiting for FeatureView {VIEW!r} to be Ready (phase Registering)" in dataset["message"]
    assert condition({"status": status}, "Ready")["message"] == dataset["message"]
    assert kube.list(RAYJOB, namespace) == []

    finish_jobs(kube, namespace)
    assert reconcile_once(kube, FeatureView, namespace, VIEW)["status"]["phase"] == "Ready"
    status = reconcile_once(kube, TrainingJob, namespace, name)["status"]
    assert condition({"status": status}, "DatasetReady")["reason"] == "FeatureViewReady"
    [rayjob] = kube.list(RAYJOB, namespace)
    source = run_config(rayjob)["dataset"]["featureService"]
    assert (source["service"], source["label"]) == ("driver_stats", "completed")
    assert source["entitiesUri"] == "pvc://llmops-data/features/trips.parquet"
    store = yaml.safe_load(source["repository"][REPO_KEY])
    assert store["project"] == "driver_ranking"
    assert store["registry"]["path"] == "/mnt/pvc/llmops-feast/driver_ranking/registry.db"
    pod = rayjob["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]["template"]["spec"]
    claims = [v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"] if "persistentVolumeClaim" in v]
    assert sorted(claims) == ["llmops-data", "llmops-feast", "llmops-models"]  # each once
    mounts = {m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
    assert "/mnt/pvc/llmops-feast" in mounts
