"""The shared reconcile pieces: parsing into InvalidSpec, status composition and minimal status patches."""

from __future__ import annotations

import pytest

from llmops_operator.api.v1alpha1 import TrainingJob
from llmops_operator.core.contract import InvalidSpec, Observation, invalid_observation, parse
from llmops_operator.controllers.base import backoff_delay, compose_status, status_patch
from llmops_operator.controllers.children import classify, owned_by
from llmops_operator.k8s.client import _error
from llmops_operator.status import kstatus
from llmops_sandbox.apiserver.patch import merge_patch
from llmops_operator.core import conditions as cond


def body(**spec):
    return {
        "apiVersion": "llmops.dev/v1alpha1", "kind": "TrainingJob",
        "metadata": {"name": "tj", "namespace": "ml", "uid": "u-1", "generation": 3},
        "spec": {"dataset": {"uri": "file:///data/corpus.jsonl"}, "outputUri": "file:///models/tj", **spec},
    }


def test_parse_gives_the_typed_object():
    obj = parse(TrainingJob, body(resources={"workers": 2}))
    assert obj.spec.resources.workers == 2
    assert obj.namespace == "ml"


@pytest.mark.parametrize("spec,message", [
    ({"resources": {"workers": 0}}, "spec.resources.workers: Input should be greater than or equal to 1"),
    ({"resources": {"workerz": 2}}, "spec.resources.workerz: Extra inputs are not permitted"),
    ({"resources": {"gpusPerWorker": 1}}, "spec.resources: gpuType is required when gpusPerWorker is above 0"),
    ({"maxDuration": "forever"}, "spec.maxDuration: String should match pattern"),
])
def test_parse_names_the_bad_field(spec, message):
    with pytest.raises(InvalidSpec) as err:
        parse(TrainingJob, body(**spec))
    assert message in str(err.value)


def test_parse_refuses_python_field_names_that_the_api_server_would_prune():
    with pytest.raises(InvalidSpec, match="gpus_per_worker"):
        parse(TrainingJob, body(resources={"gpus_per_worker": 1}))


def test_parse_ignores_whatever_is_in_status():
    parsed = parse(TrainingJob, {**body(), "status": {"phase": 42, "conditions": "garbage"}})
    assert parsed.status is None


def test_compose_keeps_transition_time_when_status_does_not_flip():
    previous = {"conditions": [{"type": "Ready", "status": "False", "reason": "Pending", "message": "",
                                "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": 1}]}
    same = compose_status(previous, Observation([cond.false("Ready", "Running")], "Running"), 2, "2026-02-02T00:00:00Z")
    flipped = compose_status(previous, Observation([cond.true("Ready", "Done")], "Succeeded"), 2, "2026-02-02T00:00:00Z")
    assert same["conditions"][0]["lastTransitionTime"] == "2026-01-01T00:00:00Z"
    assert same["conditions"][0]["observedGeneration"] == 2
    assert flipped["conditions"][0]["lastTransitionTime"] == "2026-02-02T00:00:00Z"
    assert flipped["phase"] == "Succeeded" and flipped["observedGeneration"] == 2


def test_status_patch_is_none_when_nothing_changed_and_nulls_removed_keys():
    status = {"phase": "Running", "observedGeneration": 1, "cost": {"accrued": 1.0}}
    assert status_patch(status, dict(status)) is None
    assert status_patch(status, {"phase": "Running", "observedGeneration": 2}) == {
        "observedGeneration": 2, "cost": None,
    }


def test_status_patch_nulls_keys_a_nested_block_dropped_so_the_merge_keeps_none_of_them():
    previous = {"drift": {"metric": "psi", "score": 12.6, "feature": "promptLength", "drifted": True},
                "safety": {"score": 0.9, "byRule": {"pii": 1, "prompt-injection": 2}}, "conditions": [{"type": "A"}]}
    new = {"drift": {"metric": "psi", "drifted": False}, "safety": {"score": 1.0, "byRule": {"pii": 1}},
           "conditions": [{"type": "B"}]}
    patch = status_patch(previous, new)
    assert patch == {"drift": {"score": None, "feature": None, "drifted": False},
                     "safety": {"score": 1.0, "byRule": {"prompt-injection": None}}, "conditions": [{"type": "B"}]}
    assert merge_patch(previous, patch) == new  # as the API server applies it
    assert status_patch(previous, {**previous, "safety": {"score": 0.9, "byRule": {"pii": 1, "prompt-injection": 2}}}) is None



def test_owned_by_adds_a_controller_reference_and_the_owner_namespace():
    child = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "labels": {"a": "b"}}}
    owned = owned_by(child, body())
    assert owned["metadata"]["namespace"] == "ml"
    assert owned["metadata"]["labels"] == {"a": "b"}
    assert owned["metadata"]["ownerReferences"] == [{
        "apiVersion": "llmops.dev/v1alpha1", "kind": "TrainingJob", "name": "tj", "uid": "u-1",
        "controller": True, "blockOwnerDeletion": True,
    }]
    assert "ownerReferences" not in child["metadata"], "the builder's output must not be mutated"


def test_ready_aggregates_the_first_condition_that_is_not_true():
    observed = [cond.true("Submitted", "Created"), cond.false("Succeeded", "RayJobFailed", "OOM")]
    assert cond.aggregate_ready(observed, ["Submitted", "Succeeded"]) == cond.false("Ready", "RayJobFailed", "OOM")
    assert cond.aggregate_ready(observed, ["Submitted"]).status == "True"
    assert cond.aggregate_ready(observed, ["Indexed"]).status == "Unknown"


# ---------------------------------------------------------------------------------------------------------------
# kstatus: Reconciling while work is in flight, Stalled with the API server's message when a pass cannot finish


def test_an_in_flight_phase_is_reconciling_and_a_settled_one_is_not():
    running = kstatus.with_progress(Observation([cond.false("Ready", "RayJobRunning", "step 4/10")], "Running"))
    assert by_type(running.conditions)["Reconciling"] == cond.true("Reconciling", "RayJobRunning", "step 4/10")
    for phase, ready in [("Succeeded", cond.true("Ready", "Succeeded")), ("Failed", cond.false("Ready", "Failed"))]:
        settled = kstatus.with_progress(Observation([ready], phase))
        assert set(by_type(settled.conditions)) == {"Ready"}
    invalid = kstatus.with_progress(invalid_observation("spec.x: bad"))
    assert by_type(invalid.conditions)["Stalled"] == cond.true("Stalled", "InvalidSpec", "spec.x: bad")


def test_a_failed_pass_keeps_the_last_status_and_says_why_it_is_stalled():
    previous = {"phase": "Running", "observedGeneration": 2, "progress": {"step": 40},
                "conditions": [{"type": "Ready", "status": "False", "reason": "RayJobRunning", "message": ""},
                               {"type": "Reconciling", "status": "True", "reason": "RayJobRunning"},
                               {"type": "JobCreated", "status": "True", "reason": "Created", "message": ""}]}
    failure = kstatus.PassFailure("Forbidden", 'admission webhook "quota" denied the request: over quota')
    stalled = kstatus.failed_pass(previous, failure)
    assert stalled.fields == {"progress": {"step": 40}} and stalled.phase == "Stalled"
    assert by_type(stalled.conditions) == {
        "JobCreated": cond.true("JobCreated", "Created"),
        "Ready": cond.false("Ready", "Forbidden", failure.message),
        "Stalled": cond.true("Stalled", "Forbidden", failure.message)}
    transient = kstatus.failed_pass(previous, kstatus.PassFailure("ServiceUnavailable", "503", stalled=False))
    assert transient.phase == "Running" and by_type(transient.conditions)["Ready"].reason == "RayJobRunning"
    assert by_type(transient.conditions)["Reconciling"] == cond.true("Reconciling", "ServiceUnavailable", "503")
    assert "Stalled" not in by_type(transient.conditions)


RAYJOB = {"apiVersion": "ray.io/v1", "kind": "RayJob", "metadata": {"name": "tj-run"}}
CONFIGMAP = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "tj-config"}}


@pytest.mark.parametrize("status, body, child, reason, stalled, words", [
    (404, "404 page not found", RAYJOB, "EngineMissing", True, ["rayjobs.ray.io CRD is not installed",
                                                                 "KubeRay v1.6 or later"]),
    (422, {"reason": "Invalid", "message": '.spec.preRunningDeadlineSeconds: field not declared in schema'},
     RAYJOB, "EngineMissing", True, ["rayjobs.ray.io CRD is too old", "KubeRay v1.6 or later"]),
    (403, {"reason": "Forbidden", "message": 'configmaps "tj-config" is forbidden: exceeded quota: q'},
     CONFIGMAP, "Forbidden", True, ["writing ConfigMap tj-config: 403", "exceeded quota"]),
    (422, {"reason": "Invalid", "message": 'ConfigMap "tj-config" is invalid: data: Too long'},
     CONFIGMAP, "Invalid", True, ["data: Too long"]),
    (404, {"reason": "NotFound", "message": 'namespaces "gone" not found',
           "details": {"name": "gone", "kind": "namespaces"}}, RAYJOB, "NotFound", True, ["not found"]),
    (409, {"reason": "Conflict", "message": "the object has been modified"}, CONFIGMAP, "Conflict", False, []),
    (503, "", None, "Http503", False, ["calling the API: 503"]),
])
def test_api_errors_are_classified_for_kstatus(status, body, child, reason, stalled, words):
    failure = classify(_error(status, body), child)
    assert (failure.reason, failure.stalled) == (reason, stalled)
    for word in words:
        assert word in failure.message


def test_backoff_doubles_from_two_seconds_and_stops_at_five_minutes():
    assert [backoff_delay(n) for n in range(1, 12)] == [2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]


def by_type(conditions):
    return {c.type: c for c in conditions}
