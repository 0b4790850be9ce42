"""Deleting a FeatureView: the removal Job the finalizer runs, and how long it waits for it (pure parts)."""

from __future__ import annotations

from datetime import datetime, timezone

from llmops_operator.api.v1alpha1 import FeatureView
from llmops_operator.builders.feast import APPLY_MODULE, build_feast, build_removal
from llmops_operator.core.contract import owner_body, parse
from llmops_operator.controllers.cleanup import waited_seconds
from llmops_operator.controllers.featureview import FeatureViewReconciler
from llmops_operator.entrypoints.feast_apply import removal_command

IMAGE = "registry.example/llmops:1.0"


def feature_view(**spec_changes) -> FeatureView:
    spec = {"project": "rides", "entities": [{"name": "driver", "joinKeys": ["driver_id"]}],
            "source": {"file": {"path": "pvc://data/drivers.parquet"}},
            "features": [{"name": "conv_rate", "dtype": "Float32"}], **spec_changes}
    return parse(FeatureView, {"apiVersion": "llmops.dev/v1alpha1", "kind": "FeatureView",
                               "metadata": {"name": "driver-stats", "namespace": "ml", "uid": "u-1", "generation": 1},
                               "spec": spec})


def test_removal_job_runs_the_apply_runtime_with_delete_on_the_same_definition():
    obj = feature_view()
    config_map, job = build_removal(obj, IMAGE)
    applied_config_map = build_feast(obj, IMAGE)[0]
    assert config_map == applied_config_map  # re-applying it changes nothing while the object is being deleted
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["python", "-m", APPLY_MODULE, "--config", "/etc/llmops/featureview.json", "--delete"]
    claims = [v["persistentVolumeClaim"]["claimName"] for v in job["spec"]["template"]["spec"]["volumes"]
              if "persistentVolumeClaim" in v]
    assert claims == ["llmops-feast", "data"]
    assert job["metadata"]["name"].startswith("driver-stats-fv-feast-remove-")
    assert job["metadata"]["name"] not in {c["metadata"]["name"] for c in build_feast(obj, IMAGE)}


def test_removal_is_the_default_and_retain_is_honoured():
    assert FeatureViewReconciler.has_finalizer
    assert feature_view().spec.deletion_policy == "Delete"
    assert feature_view(deletionPolicy="Retain").spec.deletion_policy == "Retain"


def test_owner_body_carries_what_owner_references_need():
    assert owner_body(feature_view()) == {"apiVersion": "llmops.dev/v1alpha1", "kind": "FeatureView",
                                          "metadata": {"name": "driver-stats", "namespace": "ml", "uid": "u-1"}}


def test_waited_seconds():
    now = datetime(2026, 5, 1, 12, 0, tzinfo=timezone.utc)
    assert waited_seconds({"metadata": {"creationTimestamp": "2026-05-01T11:50:00Z"}}, now) == 600
    assert waited_seconds({"metadata": {}}, now) == 0


def test_removal_command_for_running_it_by_hand():
    assert removal_command("/x/featureview.json", python="py") == [
        "py", "-m", "llmops_operator.entrypoints.feast_apply", "--config", "/x/featureview.json", "--delete"]
