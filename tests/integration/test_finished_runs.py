"""A finished run stays finished: an operator upgrade, a Guardrail edit or a deleted RayJob never trains again.

Passes are run one at a time (in a namespace the shared operator does not watch), with the settings an
upgraded operator would have, against the API emulator.
"""

from __future__ import annotations

import pytest

from apiservers import REAL_WHEN_BUILT, apiserver_kind, kube, namespace, new_namespace, operator  # noqa: F401
from kube_helpers import Kube, condition, reconcile_once

from llmops_operator.api.v1alpha1 import FineTune, Guardrail, TrainingJob
from llmops_operator.core.settings import Settings
from llmops_operator.k8s.resources import resource_for

APISERVERS = REAL_WHEN_BUILT  # the real apiserver when `make kube` built it, else the emulator
pytestmark = pytest.mark.integration

RAYJOB = resource_for("ray.io/v1", "RayJob")
OLD, NEW = Settings(runtime_image="registry.example/llmops:1.0"), Settings(runtime_image="registry.example/llmops:2.0")


def rayjobs(kube: Kube, namespace: str) -> list[str]:
    return sorted(j["metadata"]["name"] for j in kube.list(RAYJOB, namespace))


def succeed(kube: Kube, namespace: str, name: str) -> None:
    """What KubeRay writes when the Ray job ends well."""
    kube.patch(RAYJOB, namespace, name, {"status": {
        "jobDeploymentStatus": "Complete", "jobStatus": "SUCCEEDED",
        "startTime": "2026-05-01T10:00:00Z", "endTime": "2026-05-01T10:20:00Z"}}, subresource="status")


def test_a_succeeded_training_job_is_not_run_again(kube, new_namespace):
    namespace = new_namespace("finished")
    kube.apply({"apiVersion": "llmops.dev/v1alpha1", "kind": "TrainingJob", "metadata": {"name": "tj"},
                "spec": {"dataset": {"uri": "pvc://data/corpus.jsonl"}, "checkpoint": {"uri": "pvc://models/tj"}}},
               namespace)
    reconcile_once(kube, TrainingJob, namespace, "tj", settings=OLD)
    [name] = rayjobs(kube, namespace)
    succeed(kube, namespace, name)
    assert reconcile_once(kube, TrainingJob, namespace, "tj", settings=OLD)["status"]["phase"] == "Succeeded"

    reconcile_once(kube, TrainingJob, namespace, "tj", settings=NEW)  # the operator was upgraded
    assert rayjobs(kube, namespace) == [name]

    kube.delete(RAYJOB, namespace, name)
    after = reconcile_once(kube, TrainingJob, namespace, "tj", settings=NEW)
    assert rayjobs(kube, namespace) == []
    assert after["status"]["phase"] == "Succeeded" and condition(after, "Ready")["status"] == "True"
    assert after["status"]["rayJob"]["name"] == name and after["status"]["outputUri"] == "pvc://models/tj/final"


def test_a_guardrail_edit_does_not_rename_a_fine_tunes_run(kube, new_namespace):
    namespace = new_namespace("finished")
    policy = {"apiVersion": "llmops.dev/v1alpha1", "kind": "Guardrail", "metadata": {"name": "policy"},
              "spec": {"checks": [{"name": "tox", "type": "toxicity", "action": "block", "threshold": 0.7}]}}
    kube.apply(policy, namespace)
    reconcile_once(kube, Guardrail, namespace, "policy", settings=OLD)
    kube.apply({"apiVersion": "llmops.dev/v1alpha1", "kind": "FineTune", "metadata": {"name": "ft"},
                "spec": {"baseModel": {"uri": "pvc://models/base"}, "dataset": {"uri": "pvc://data/sft.jsonl"},
                         "output": {"uri": "pvc://models/ft"},
                         "evaluation": {"dataset": {"uri": "pvc://data/eval.jsonl"},
                                        "guardrailRef": {"name": "policy"}}}}, namespace)
    reconcile_once(kube, FineTune, namespace, "ft", settings=OLD)
    before = rayjobs(kube, namespace)
    assert len(before) == 1

    policy["spec"]["checks"][0]["threshold"] = 0.5
    kube.apply(policy, namespace)
    edited = reconcile_once(kube, Guardrail, namespace, "policy", settings=NEW)
    assert edited["status"]["policyConfigMap"], edited["status"]
    reconcile_once(kube, FineTune, namespace, "ft", settings=NEW)
    assert rayjobs(kube, namespace) == before
