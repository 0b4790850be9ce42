"""The shared reconcile pieces: parsing into InvalidSpec, status composition and minimal status patches."""

from __future__ import annotations

import pytest

from llmops_operator.api.v1alpha1 import TrainingJob
from llmops_operator.core.contract import InvalidSpec, Observation, parse
from llmops_operator.controllers.base import compose_status, owned_by, status_patch
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
