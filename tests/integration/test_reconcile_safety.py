"""The shared reconcile loop against the API emulator: it never takes over or deletes what it does not control,
never prunes a live child because a dependency is briefly unready, and says in status why a pass cannot finish
(kstatus Stalled / EngineMissing) instead of retrying in silence."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import yaml

from apiservers import REAL_WHEN_BUILT, apiserver_kind, kube, namespace, new_namespace, operator  # noqa: F401
from kube_helpers import ROOT, established as _established
from kube_helpers import Kube, eventually, example

from llmops_operator.api.v1alpha1 import Guardrail, InferenceService, TrainingJob
from llmops_operator.controllers.base import Loop, RetryLater
from llmops_operator.controllers.kinds import reconciler_for
from llmops_operator.core.contract import Context, parse
from llmops_operator.core.settings import Settings
from llmops_operator.k8s import kubeconfig
from llmops_operator.k8s.client import ApiClient
from llmops_operator.k8s.resources import resource_for

APISERVERS = REAL_WHEN_BUILT  # the real apiserver when `make kube` built it, else the emulator
CONFIGMAP = resource_for("v1", "ConfigMap")
KSERVE = resource_for("serving.kserve.io/v1beta1", "InferenceService")
GUARDRAILS = resource_for("llmops.dev/v1alpha1", "Guardrail")
POLICY = "llmops.dev/guardrail=policy"
"""The Guardrail's ConfigMaps (a real cluster publishes its CA bundle as a ConfigMap in every namespace)."""
SERVICES = resource_for("llmops.dev/v1alpha1", "InferenceService")


@pytest.fixture
def namespace(new_namespace) -> str:
    """A fresh namespace no operator reconciles in (on the emulator the shared one watches t-*): these tests run
    the passes."""
    return new_namespace("safe")


def run(kind: type, work: Any, config: Path | None = None) -> Any:
    """`work(loop)` with a fresh client and Loop for `kind`, as one kopf handler call would run it."""
    async def main() -> Any:
        connection = kubeconfig.from_kubeconfig(str(config)) if config else kubeconfig.load()
        async with ApiClient(connection) as api:
            return await work(Loop(reconciler_for(kind), api, Settings()))
    return asyncio.run(main())


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    return next((c for c in obj.get("status", {}).get("conditions", []) if c["type"] == type_), {})


def policy() -> dict[str, Any]:
    """The example Guardrail as `policy`, without spec.evaluation (its red-team ConfigMap is not the subject)."""
    body = example("Guardrail") | {"metadata": {"name": "policy"}}
    body["spec"].pop("evaluation", None)
    return body


def served_with_guardrail(kube: Kube, namespace: str) -> dict[str, Any]:
    """A Ready Guardrail and an InferenceService behind it, reconciled once: its KServe service exists."""
    kube.apply(policy(), namespace)
    run(Guardrail, lambda loop: loop.reconcile(kube.get(GUARDRAILS, namespace, "policy")))
    assert condition(kube.get(GUARDRAILS, namespace, "policy"), "Ready")["status"] == "True"
    kube.apply({"apiVersion": "llmops.dev/v1alpha1", "kind": "InferenceService", "metadata": {"name": "assistant"},
                "spec": {"model": {"uri": "pvc://models/assistant", "format": "huggingface"},
                         "guardrailRef": {"name": "policy"}}}, namespace)
    run(InferenceService, lambda loop: loop.reconcile(kube.get(SERVICES, namespace, "assistant")))
    assert kube.get(KSERVE, namespace, "assistant") is not None
    return kube.get(SERVICES, namespace, "assistant")


def test_a_spec_edit_while_the_guardrail_is_unready_keeps_the_live_service(kube, namespace):
    served_with_guardrail(kube, namespace)
    kube.patch(GUARDRAILS, namespace, "policy", {"status": {"conditions": [
        {"type": "Ready", "status": "False", "reason": "Compiling", "message": "",
         "lastTransitionTime": "2026-01-01T00:00:00Z"}]}}, subresource="status")
    kube.patch(SERVICES, namespace, "assistant", {"spec": {"canaryTrafficPercent": 10}})
    edited = kube.get(SERVICES, namespace, "assistant")

    assert run(InferenceService, lambda loop: loop.prune(edited)) == []
    run(InferenceService, lambda loop: loop.reconcile(edited, prune=True))
    assert kube.get(KSERVE, namespace, "assistant") is not None, "the live KServe service was pruned"


def test_prune_deletes_what_the_spec_dropped_but_never_an_object_it_does_not_control(kube, namespace):
    kube.apply(policy(), namespace)
    run(Guardrail, lambda loop: loop.reconcile(kube.get(GUARDRAILS, namespace, "policy")))
    (old,) = kube.list(CONFIGMAP, namespace, POLICY)
    foreign = {"apiVersion": "v1", "kind": "ConfigMap", "data": {"mine": "yes"},
               "metadata": {"name": "someone-elses", "labels": old["metadata"]["labels"]}}
    kube.apply(foreign, namespace)
    checks = kube.get(GUARDRAILS, namespace, "policy")["spec"]["checks"]
    kube.patch(GUARDRAILS, namespace, "policy", {"spec": {"checks": checks[:1]}})
    edited = kube.get(GUARDRAILS, namespace, "policy")

    assert run(Guardrail, lambda loop: loop.prune(edited)) == [f"ConfigMap/{old['metadata']['name']}"]
    names = {c["metadata"]["name"] for c in kube.list(CONFIGMAP, namespace, POLICY)}
    assert names == {"someone-elses"}, "only the dropped child is pruned, never the foreign one"

    run(Guardrail, lambda loop: loop.reconcile(edited, prune=True))  # the pass the operator runs on a spec change
    names = {c["metadata"]["name"] for c in kube.list(CONFIGMAP, namespace, POLICY)}
    assert "someone-elses" in names and old["metadata"]["name"] not in names and len(names) == 2


def test_a_guardrail_edit_keeps_the_policy_the_live_service_mounts_until_it_moves_on(kube, namespace):
    """The serving revision's pods mount the previous policy ConfigMap: pruning it on the edit would leave any pod
    that starts (a restart, a scale-up, the whole service while the new policy is not Ready) unable to mount it."""
    served_with_guardrail(kube, namespace)
    old = kube.get(GUARDRAILS, namespace, "policy")["status"]["policyConfigMap"]
    checks = kube.get(GUARDRAILS, namespace, "policy")["spec"]["checks"]
    kube.patch(GUARDRAILS, namespace, "policy", {"spec": {"checks": checks[:1]}})
    run(Guardrail, lambda loop: loop.reconcile(kube.get(GUARDRAILS, namespace, "policy"), prune=True))
    new = kube.get(GUARDRAILS, namespace, "policy")["status"]["policyConfigMap"]
    assert new != old and kube.get(CONFIGMAP, namespace, old) is not None, "the mounted policy was pruned"

    run(InferenceService, lambda loop: loop.reconcile(kube.get(SERVICES, namespace, "assistant")))
    assert new in str(kube.get(KSERVE, namespace, "assistant")["spec"]["transformer"]["volumes"])
    run(Guardrail, lambda loop: loop.reconcile(kube.get(GUARDRAILS, namespace, "policy")))  # a resync pass
    assert kube.get(CONFIGMAP, namespace, old) is None, "a released policy is pruned by the next pass"


def test_a_child_name_held_by_a_foreign_object_is_a_stalled_conflict_never_a_takeover(kube, namespace):
    kube.apply(policy(), namespace)
    body = kube.get(GUARDRAILS, namespace, "policy")
    (child,) = reconciler_for(Guardrail).children(parse(Guardrail, body), Context.default(), {})
    name = child["metadata"]["name"]
    kube.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"mine": "yes"}},
               namespace)

    with pytest.raises(RetryLater) as first:
        run(Guardrail, lambda loop: loop.reconcile(body))

    stalled = condition(kube.get(GUARDRAILS, namespace, "policy"), "Stalled")
    ready = condition(kube.get(GUARDRAILS, namespace, "policy"), "Ready")
    assert (stalled["status"], stalled["reason"]) == ("True", "ChildConflict")
    assert (ready["status"], ready["reason"]) == ("False", "ChildConflict")
    assert f"ConfigMap {namespace}/{name} already exists and is not controlled by this Guardrail" in ready["message"]
    assert first.value.failure.reason == "ChildConflict"
    held = kube.get(CONFIGMAP, namespace, name)
    assert held["data"] == {"mine": "yes"} and not held["metadata"].get("ownerReferences"), "the object was adopted"

    kube.delete(CONFIGMAP, namespace, name)
    run(Guardrail, lambda loop: loop.reconcile(kube.get(GUARDRAILS, namespace, "policy")))
    recovered = kube.get(GUARDRAILS, namespace, "policy")
    assert condition(recovered, "Ready")["status"] == "True" and not condition(recovered, "Stalled")


def test_failed_passes_back_off_exponentially_up_to_a_cap(kube, namespace):
    kube.apply(policy(), namespace)
    body = kube.get(GUARDRAILS, namespace, "policy")
    (child,) = reconciler_for(Guardrail).children(parse(Guardrail, body), Context.default(), {})
    kube.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": child["metadata"]["name"]}},
               namespace)

    async def passes(loop: Loop) -> list[float]:
        delays = []
        for _ in range(10):
            with pytest.raises(RetryLater) as err:
                await loop.reconcile(body)
            delays.append(err.value.delay)
        return delays

    delays = run(Guardrail, passes)
    assert delays[:4] == [2, 4, 8, 16] and delays[-1] == 300 and max(delays) == 300


@pytest.fixture(scope="module")
def bare_cluster(tmp_path_factory):
    """A second emulator with the llmops.dev CRDs and no engine CRDs (no KubeRay, no KServe)."""
    from llmops_sandbox.apiserver import ApiServerThread

    with ApiServerThread() as server:
        path = server.write_kubeconfig(tmp_path_factory.mktemp("bare") / "config")
        kube = Kube(path)
        docs = [yaml.safe_load(p.read_text()) for p in sorted((ROOT / "crds").glob("llmops.dev_*.yaml"))]
        for doc in docs:
            kube.apply(doc, namespace=None)
        for doc in docs:
            eventually(lambda: _established(kube, doc["metadata"]["name"]), what=doc["metadata"]["name"])
        kube.create_namespace("bare")
        yield kube, path


@pytest.mark.parametrize("kind, manifest, crd, version", [
    (InferenceService, {"model": {"uri": "pvc://models/m", "format": "huggingface"}},
     "inferenceservices.serving.kserve.io", "serving.kserve.io/v1beta1"),
    (TrainingJob, {"dataset": {"uri": "pvc://data/corpus.jsonl"}, "outputUri": "pvc://models/run"},
     "rayjobs.ray.io", "KubeRay v1.6 or later"),
])
def test_a_missing_engine_crd_is_engine_missing_naming_the_crd_and_version(bare_cluster, kind, manifest, crd,
                                                                           version):
    bare_cluster, config = bare_cluster
    where = resource_for("llmops.dev/v1alpha1", kind.info.kind)
    bare_cluster.apply({"apiVersion": "llmops.dev/v1alpha1", "kind": kind.info.kind,
                        "metadata": {"name": "needs-engine"}, "spec": manifest}, "bare")
    with pytest.raises(RetryLater):
        run(kind, lambda loop: loop.reconcile(bare_cluster.get(where, "bare", "needs-engine")), config)
    obj = bare_cluster.get(where, "bare", "needs-engine")
    ready, stalled = condition(obj, "Ready"), condition(obj, "Stalled")
    assert (ready["status"], ready["reason"], stalled["status"]) == ("False", "EngineMissing", "True")
    assert crd in ready["message"] and version in ready["message"]
    assert obj["status"]["observedGeneration"] == obj["metadata"]["generation"]


def test_a_status_write_the_server_refuses_backs_off_too(kube, namespace):
    """An object deleted under a pass (404 on /status) or a 403 on the status subresource has nowhere to report;
    it is retried with the same growing delay, not every two seconds forever."""
    kube.apply(policy(), namespace)
    body = kube.get(GUARDRAILS, namespace, "policy")
    kube.delete(GUARDRAILS, namespace, "policy")

    async def passes(loop: Loop) -> list[float]:
        delays = []
        for _ in range(3):
            with pytest.raises(RetryLater) as err:
                await loop.reconcile(body)
            delays.append(err.value.delay)
        return delays

    assert run(Guardrail, passes) == [2, 4, 8]
