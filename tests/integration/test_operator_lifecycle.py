"""The real operator against the emulator and the real kube-apiserver: create, update, invalid spec, delete,
restart."""

from __future__ import annotations

import urllib.error
import uuid

import pytest

from apiservers import apiserver_kind, kube, namespace, new_namespace, operator  # noqa: F401  (on both APIs)
from kube_helpers import Kube, apply_companions, condition, eventually, example

from llmops_operator.api.v1alpha1 import ALL_KINDS, BY_KIND
from llmops_operator.builders import labels
from llmops_operator.builders.feast import REMOVE_COMPONENT
from llmops_operator.builders.labels import children_selector
from llmops_operator.controllers.kinds import reconciler_for
from llmops_operator.core.contract import parse
from llmops_operator.k8s.resources import ApiResource, resource_for

pytestmark = pytest.mark.integration

RAYJOB = resource_for("ray.io/v1", "RayJob")
CONFIGMAP = resource_for("v1", "ConfigMap")
NAMESPACE = resource_for("v1", "Namespace")


def where(kind: str) -> ApiResource:
    cls = BY_KIND[kind]
    return ApiResource("llmops.dev/v1alpha1", kind, cls.info.plural)


def reconciled(kube: Kube, kind: str, namespace: str, name: str):
    def check():
        obj = kube.get(where(kind), namespace, name)
        assert obj and obj.get("status", {}).get("observedGeneration") == obj["metadata"]["generation"], obj and obj.get("status")
        assert condition(obj, "Ready"), "no Ready condition yet"
        return obj
    return eventually(check, what=f"{kind}/{name} reconciled")


def children(kube: Kube, kind: str, namespace: str, name: str) -> list[dict]:
    obj = parse(BY_KIND[kind], kube.get(where(kind), namespace, name))
    selector = children_selector(obj)
    kinds = [resource_for(v, k) for v, k in [("v1", "ConfigMap"), ("batch/v1", "Job"), ("batch/v1", "CronJob"),
                                             ("ray.io/v1", "RayJob"), ("serving.kserve.io/v1beta1", "InferenceService")]]
    return [c for k in kinds for c in kube.list(k, namespace, selector)]


@pytest.mark.parametrize("kind", [k.info.kind for k in ALL_KINDS])
def test_each_example_is_reconciled_with_owned_children(kind, kube, operator, namespace):
    body = example(kind)
    kube.apply(body, namespace)
    obj = reconciled(kube, kind, namespace, body["metadata"]["name"])
    assert condition(obj, "Ready")["reason"] != "InvalidSpec", condition(obj, "Ready")
    for child in children(kube, kind, namespace, body["metadata"]["name"]):
        refs = child["metadata"]["ownerReferences"]
        assert refs[0]["uid"] == obj["metadata"]["uid"] and refs[0]["controller"] is True
    finalizers = obj["metadata"].get("finalizers") or []
    assert ("llmops.dev/finalizer" in finalizers) == reconciler_for(BY_KIND[kind]).has_finalizer, \
        "a finalizer only where something outside Kubernetes must be cleaned"


def test_invalid_spec_is_reported_without_a_retry_storm(kube, operator, namespace):
    body = example("TrainingJob")
    body["spec"]["resources"] = {"workers": 2, "gpusPerWorker": 1, "gpuType": "nvidia-imaginary"}
    kube.apply(body, namespace)
    obj = reconciled(kube, "TrainingJob", namespace, body["metadata"]["name"])
    ready = condition(obj, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "InvalidSpec")
    assert "spec.resources.gpuType" in ready["message"] and "nvidia-imaginary" in ready["message"]
    assert kube.list(RAYJOB, namespace) == []


def test_schema_rejects_a_bad_manifest_before_the_operator_sees_it(kube, operator, namespace):
    body = example("TrainingJob")
    body["spec"]["resources"] = {"workers": 0}
    with pytest.raises(urllib.error.HTTPError) as err:
        kube.apply(body, namespace)
    assert err.value.code == 422
    assert "spec.resources.workers" in err.value.body["message"]


def test_spec_update_is_observed_and_children_follow(kube, operator, namespace):
    body = example("TrainingJob")
    name = body["metadata"]["name"]
    kube.apply(body, namespace)
    first = reconciled(kube, "TrainingJob", namespace, name)
    body["spec"]["training"] = {**body["spec"].get("training", {}), "learningRate": 0.0042}
    kube.apply(body, namespace)

    def updated():
        obj = reconciled(kube, "TrainingJob", namespace, name)
        assert obj["metadata"]["generation"] == first["metadata"]["generation"] + 1
        return obj
    eventually(updated, what="new generation observed")
    rayjobs = kube.list(RAYJOB, namespace)
    assert len(rayjobs) == 1


def test_delete_collects_children(kube, operator, namespace):
    apply_companions(kube, "Guardrail", namespace)
    body = example("Guardrail")
    name = body["metadata"]["name"]
    kube.apply(body, namespace)
    reconciled(kube, "Guardrail", namespace, name)
    assert children(kube, "Guardrail", namespace, name)
    kube.delete(where("Guardrail"), namespace, name)
    eventually(lambda: kube.get(where("Guardrail"), namespace, name) is None, what="guardrail gone")
    eventually(lambda: not kube.list(CONFIGMAP, namespace, f"llmops.dev/guardrail={name}"), what="policy collected")


def test_a_feature_view_goes_with_its_namespace_without_a_removal_job(kube, operator, namespace):
    """No Job can be created in a terminating namespace: the finalizer lets the view go instead of retrying."""
    body = example("FeatureView")
    name = body["metadata"]["name"]
    kube.apply(body, namespace)
    reconciled(kube, "FeatureView", namespace, name)
    assert kube.get(where("FeatureView"), namespace, name)["metadata"].get("finalizers")
    kube.delete(NAMESPACE, None, namespace)
    eventually(lambda: kube.get(where("FeatureView"), namespace, name) is None, timeout=15,
               what="the view released by its finalizer")
    # The real namespace controller removes the view's other Jobs (materialize) after this, in its own time.
    removal = f"llmops.dev/featureview={name},{labels.COMPONENT}={REMOVE_COMPONENT}"
    assert not kube.list(resource_for("batch/v1", "Job"), namespace, removal)


def test_restart_mid_reconcile_creates_nothing_twice(kube, apiserver, apiserver_kind):
    """Stop the operator as soon as the child exists (status maybe unwritten), start a fresh one:
    deterministic names, the recorded submission id and server-side apply make it converge on the
    same RayJob instead of creating a second one or resubmitting."""
    if apiserver_kind is not None:
        pytest.skip("on the real apiserver the chart's operator watches every namespace: no restart to stage")
    from llmops_sandbox.operator_thread import OperatorThread
    from llmops_operator.core.settings import Settings

    namespace = f"r-{uuid.uuid4().hex[:8]}"  # outside the shared operator's t-* namespaces
    kube.create_namespace(namespace)
    body = example("TrainingJob")
    name = body["metadata"]["name"]
    with OperatorThread(Settings(), namespaces=[namespace]):
        kube.apply(body, namespace)
        first = eventually(lambda: kube.list(RAYJOB, namespace), what="RayJob created")
    with OperatorThread(Settings(), namespaces=[namespace]):
        reconciled(kube, "TrainingJob", namespace, name)
    again = kube.list(RAYJOB, namespace)
    assert [(r["metadata"]["uid"], r["spec"].get("jobId")) for r in again] == \
        [(r["metadata"]["uid"], r["spec"].get("jobId")) for r in first]


def test_the_resync_restores_a_status_someone_overwrote(kube, operator, namespace):
    """No watch event asks for this pass (a status write is not a spec change): only the resync does."""
    body = example("Guardrail")
    body["spec"].pop("evaluation", None)  # Ready without a dataset to evaluate
    kube.apply(body, namespace)
    name = body["metadata"]["name"]
    reconciled(kube, "Guardrail", namespace, name)
    kube.patch(where("Guardrail"), namespace, name, {"status": {"phase": "Tampered"}}, subresource="status")

    def restored():
        assert kube.get(where("Guardrail"), namespace, name)["status"]["phase"] == "Ready"
        return True
    eventually(restored, timeout=30, what="the resync pass restoring the status")
