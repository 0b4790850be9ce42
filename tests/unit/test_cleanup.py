"""The finalizer rules (controllers/cleanup.py): lenient parsing, the escape hatch, Job outcomes, CleanupFailed."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from llmops_operator.api.v1alpha1 import FeatureView, VectorIndex
from llmops_operator.controllers import cleanup
from llmops_operator.core.contract import InvalidSpec
from llmops_operator.k8s.client import ApiError

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=timezone.utc)


def body(spec_changes: dict | None = None, status: dict | None = None, annotations: dict | None = None) -> dict:
    spec = {"milvus": {"uri": "http://milvus:19530", "collection": "docs"},
            "embedding": {"model": "builtin:minilm", "dimension": 384},
            "source": {"uri": "s3://bucket/docs"}, "deletionPolicy": "Delete", **(spec_changes or {})}
    meta = {"name": "docs", "namespace": "ml", "uid": "u-1", "generation": 3, "annotations": annotations or {}}
    return {"apiVersion": "llmops.dev/v1alpha1", "kind": "VectorIndex", "metadata": meta, "spec": spec,
            **({"status": status} if status is not None else {})}


def test_a_status_the_model_rejects_is_not_read():
    obj = cleanup.parse_leniently(VectorIndex, body(status={"vectors": "many", "conditions": "broken"}))
    assert obj.spec.deletion_policy == "Delete" and obj.status is None


def test_spec_fields_the_model_rejects_fall_back_to_their_defaults():
    skewed = body({"reindexSchedule": "every tuesday", "fieldFromANewerVersion": {"x": 1},
                   "index": {"type": "DISKANN"}, "embedding": {"model": "builtin:minilm", "dimension": 384,
                                                               "batchSize": 0}})
    obj = cleanup.parse_leniently(VectorIndex, skewed)
    assert obj.spec.reindex_schedule is None and obj.spec.index.type == "HNSW"
    assert obj.spec.embedding.batch_size == 32 and obj.spec.milvus.uri == "http://milvus:19530"
    assert skewed["spec"]["reindexSchedule"] == "every tuesday"  # the body itself is left alone


def test_a_spec_missing_what_cleanup_needs_names_the_field():
    broken = body()
    del broken["spec"]["milvus"]
    with pytest.raises(InvalidSpec, match="spec.milvus"):
        cleanup.parse_leniently(VectorIndex, broken)
    assert cleanup.asks_for_cleanup(VectorIndex, broken)
    assert not cleanup.asks_for_cleanup(VectorIndex, body({"deletionPolicy": "Retain"}))
    no_policy = body()
    del no_policy["spec"]["deletionPolicy"]
    assert not cleanup.asks_for_cleanup(VectorIndex, no_policy)  # VectorIndex defaults to Retain
    assert cleanup.asks_for_cleanup(FeatureView, {"spec": {}})  # FeatureView defaults to Delete


def test_the_escape_hatch_annotation():
    assert cleanup.skip_requested(body(annotations={cleanup.SKIP_ANNOTATION: "true"}))
    assert cleanup.skip_requested(body(annotations={cleanup.SKIP_ANNOTATION: " True "}))
    assert not cleanup.skip_requested(body(annotations={cleanup.SKIP_ANNOTATION: "false"}))
    assert not cleanup.skip_requested(body())


def job(status: dict, created: str = "2026-05-01T11:58:00Z") -> dict:
    return {"apiVersion": "batch/v1", "kind": "Job", "status": status,
            "metadata": {"name": "docs-cleanup-1", "creationTimestamp": created}}


def test_a_cleanup_job_is_done_running_failed_or_timed_out():
    failed = {"conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                              "message": "Job has reached the specified backoff limit"}], "failed": 4}
    assert cleanup.job_cleanup(job({"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}),
                               NOW, "dropping", 600) == cleanup.DONE
    assert cleanup.job_cleanup(job({"active": 1}), NOW, "dropping", 600).state == "Running"
    outcome = cleanup.job_cleanup(job(failed), NOW, "dropping", 600)
    assert outcome.state == "Failed" and outcome.reason == "CleanupJobFailed"
    assert "backoff limit" in outcome.message and cleanup.SKIP_ANNOTATION in outcome.message
    late = cleanup.job_cleanup(job({"active": 1}, created="2026-05-01T11:00:00Z"), NOW, "dropping", 600)
    assert late.state == "Failed" and late.reason == "CleanupJobTimedOut"


def test_cleanup_failed_is_added_beside_the_other_conditions_and_stable():
    ready = {"type": "Ready", "status": "True", "reason": "Ingested", "message": "",
             "lastTransitionTime": "2026-05-01T10:00:00Z", "observedGeneration": 3}
    current = body(status={"conditions": [ready]})
    outcome = cleanup.failed("CleanupJobFailed", "the Job failed")
    conditions = cleanup.failure_condition(current, outcome, NOW)
    assert conditions[0] == ready
    assert conditions[1] | {"lastTransitionTime": None} == {
        "type": "CleanupFailed", "status": "True", "reason": "CleanupJobFailed", "message": "the Job failed",
        "lastTransitionTime": None, "observedGeneration": 3}
    later = datetime(2026, 5, 1, 13, 0, tzinfo=timezone.utc)
    assert cleanup.failure_condition(body(status={"conditions": conditions}), outcome, later) == conditions


def test_api_errors_back_off_exponentially_up_to_a_cap():
    delays = [cleanup.api_retry_delay(n) for n in range(1, cleanup.MAX_API_ATTEMPTS + 3)]
    assert delays == sorted(delays) and delays[0] < delays[1] and delays[-1] == cleanup.MAX_API_BACKOFF_SECONDS


def test_namespace_terminating_is_recognised():
    refused = ApiError(403, {"message": 'jobs "x" is forbidden: unable to create new content in namespace ml '
                                        "because it is being terminated",
                             "details": {"causes": [{"reason": "NamespaceTerminating"}]}})
    assert cleanup.namespace_terminating(refused)
    assert not cleanup.namespace_terminating(ApiError(403, {"message": "exceeded quota"}))


def test_cleanup_failed_replaces_conditions_another_version_wrote_in_another_shape():
    outcome = cleanup.failed("ApiError", "quota exceeded")
    for status in ({"conditions": "not a list"}, {"conditions": ["x", {"type": "Ready"}]}, "not a dict"):
        conditions = cleanup.failure_condition(body(status=status), outcome, NOW)
        assert conditions[-1]["type"] == "CleanupFailed" and all(isinstance(c, dict) for c in conditions)
