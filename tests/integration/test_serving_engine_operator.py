"""The InferenceService reconcile for the serving-engine features, on the real apiserver when it is built (the
chart's credentials, a `restricted` namespace, the sandbox's KServe stand-in CRD taken away) and on an emulator of its
own otherwise: the LLMInferenceService
target without its CRD (EngineMissing, nothing else written) and with KServe's real CRD (the LLMInferenceService and
the guardrail gateway applied, Ready from KServe's conditions), and the model cache choosing KServe's
LocalModelNamespaceCache only where its CRD is installed, else a claim and its fill Job."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

import apiservers
from apiservers import REAL_WHEN_BUILT, apiserver_kind, serves  # noqa: F401
from kube_helpers import ROOT, Kube, established, eventually
from llmops_operator.api.v1alpha1 import InferenceService
from llmops_operator.controllers.base import Loop, RetryLater
from llmops_operator.controllers.kinds import reconciler_for
from llmops_operator.core.settings import Settings
from llmops_operator.k8s import kubeconfig
from llmops_operator.k8s.client import ApiClient
from llmops_operator.k8s.resources import resource_for
from llmops_sandbox.realkube import binaries

pytestmark = pytest.mark.integration
APISERVERS = REAL_WHEN_BUILT  # the real apiserver when `make kube` built it, else the emulator

SERVICES = resource_for("llmops.dev/v1alpha1", "InferenceService")
LLM = resource_for("serving.kserve.io/v1alpha1", "LLMInferenceService")
CACHES = resource_for("serving.kserve.io/v1alpha1", "LocalModelNamespaceCache")
DEPLOYMENTS = resource_for("apps/v1", "Deployment")
CLAIMS = resource_for("v1", "PersistentVolumeClaim")
JOBS = resource_for("batch/v1", "Job")
REAL_KSERVE_CRDS = ("llminferenceservices.serving.kserve.io", "localmodelnamespacecaches.serving.kserve.io")
GPUS = {"gpus": 2, "gpuType": "nvidia-l4", "cpu": "8", "memory": "32Gi"}


def install(kube: Kube, crds: list[dict[str, Any]]) -> None:
    for crd in crds:
        kube.apply(crd, namespace=None)
    for crd in crds:
        # KServe's CRDs are megabytes: the real apiserver takes a while to establish them (as realkube.llmops allows).
        eventually(lambda: established(kube, crd["metadata"]["name"]), timeout=180, what=crd["metadata"]["name"])
        # The real apiserver answers 429 for an Established CRD's objects until their storage is ready.
        eventually(lambda: serves(kube, crd), timeout=60, what=f"{crd['metadata']['name']} served")


@pytest.fixture(scope="module")
def cluster(apiserver_kind, tmp_path_factory):
    """(admin client, the kubeconfig the passes run with, namespace) with the llmops.dev CRDs and no KServe CRD."""
    if apiserver_kind is not None:
        yield from _real(apiserver_kind)
        return
    from llmops_sandbox.apiserver import ApiServerThread

    with ApiServerThread() as server:
        path = server.write_kubeconfig(tmp_path_factory.mktemp("engine") / "config")
        kube = Kube(path)
        install(kube, [yaml.safe_load(p.read_text()) for p in sorted((ROOT / "crds").glob("llmops.dev_*.yaml"))])
        kube.create_namespace("ml")
        yield kube, path, "ml"


def _real(real):
    """The shared real control plane without the KServe stand-in CRD; the real KServe CRDs the tests install are
    removed again at the end (the stand-in comes back with the next module)."""
    from realkube import llmops
    from realkube.chart_operator import restricted_namespace

    kube = real.kube
    llmops.remove(kube, [{"metadata": {"name": "inferenceservices.serving.kserve.io"}}])
    namespace = f"ml-{uuid.uuid4().hex[:8]}"
    restricted_namespace(kube, namespace)
    try:
        yield kube, real.installed.kubeconfig, namespace
    finally:
        llmops.remove(kube, [{"metadata": {"name": name}} for name in REAL_KSERVE_CRDS])


@pytest.fixture(autouse=True)
def refusals_fail(apiserver_kind, caplog):
    """On the real apiserver a refusal the chart's credentials get in a pass fails the test."""
    if apiserver_kind is None:
        yield
        return
    with apiservers.refusals_fail(caplog):
        yield


def kserve_crds(*names: str) -> list[dict[str, Any]]:
    directory = binaries.kserve_crd_dir()
    if directory is None:
        pytest.skip("KServe's module is not in the Go module cache: run `make kube`")
    return [yaml.safe_load((directory / name).read_text()) for name in names]


def reconcile(config: Path, body: dict[str, Any]) -> None:
    async def main() -> None:
        async with ApiClient(kubeconfig.from_kubeconfig(str(config))) as api:
            await Loop(reconciler_for(InferenceService), api, Settings()).reconcile(body)
    asyncio.run(main())


def apply_service(kube: Kube, namespace: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    kube.apply({"apiVersion": "llmops.dev/v1alpha1", "kind": "InferenceService", "metadata": {"name": name},
                "spec": spec}, namespace)
    return kube.get(SERVICES, namespace, name)


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    return next((c for c in obj.get("status", {}).get("conditions", []) if c["type"] == type_), {})


LLM_SPEC = {"deployment": "llmInferenceService", "model": {"uri": "hf://org/model"}, "resources": GPUS,
            "transformer": {"cpu": "500m"}}


def test_without_the_crd_an_llm_service_is_engine_missing_and_writes_nothing(cluster):
    kube, config, ns = cluster
    with pytest.raises(RetryLater):
        reconcile(config, apply_service(kube, ns, "no-llm", LLM_SPEC))
    obj = kube.get(SERVICES, ns, "no-llm")
    ready = condition(obj, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "EngineMissing")
    assert "llminferenceservices.serving.kserve.io CRD is not installed" in ready["message"]
    assert kube.get(DEPLOYMENTS, ns, "no-llm-lsvc-gateway") is None


def test_a_cache_without_kserves_local_model_cache_is_a_claim_and_a_fill_job(cluster):
    kube, config, ns = cluster
    spec = {"model": {"uri": "hf://org/model", "cache": {"size": "20Gi", "nodeGroups": ["gpu"]}},
            "resources": GPUS}
    with pytest.raises(RetryLater):  # no KServe InferenceService CRD here either: the service itself is missing
        reconcile(config, apply_service(kube, ns, "cached", spec))
    claims = kube.list(CLAIMS, ns)
    assert [c["metadata"]["name"] for c in claims] == [kube.list(JOBS, ns)[0]["metadata"]["name"]]
    assert claims[0]["metadata"]["ownerReferences"][0]["name"] == "cached"


def test_with_kserves_crds_the_llm_service_and_its_gateway_are_applied_and_mirrored(cluster, apiserver_kind):
    kube, config, ns = cluster
    real = apiserver_kind is not None
    install(kube, kserve_crds("llmisvc/serving.kserve.io_llminferenceservices.yaml",
                              "localmodel/serving.kserve.io_localmodelnamespacecaches.yaml"))
    spec = {**LLM_SPEC, "model": {"uri": "hf://org/model", "cache": {"size": "20Gi", "nodeGroups": ["gpu"]}}}
    reconcile(config, apply_service(kube, ns, "chat", spec))
    llm = kube.get(LLM, ns, "chat")
    assert llm["spec"]["router"]["scheduler"] == {} and llm["spec"]["parallelism"] == {"tensor": 2}
    cache = kube.list(CACHES, ns)
    assert [c["spec"]["sourceModelUri"] for c in cache] == ["hf://org/model"]
    assert kube.get(DEPLOYMENTS, ns, "chat-lsvc-gateway") is not None
    # What KServe's controllers and the Deployment controller would write.
    kube.patch(LLM, ns, "chat", {"status": {"url": f"http://gw/{ns}/chat", "conditions": [
        {"type": t, "status": "True", "lastTransitionTime": "2026-05-01T12:00:00Z"}
        for t in ("MainWorkloadReady", "Ready")]}}, subresource="status")
    kube.patch(CACHES, ns, cache[0]["metadata"]["name"], {"status": {"copies": {"total": 2, "available": 2}}},
               subresource="status")
    kube.patch(DEPLOYMENTS, ns, "chat-lsvc-gateway", {"status": {"conditions": [  # the emulator has no controller
        {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"}]}}, subresource="status")
    reconcile(config, kube.get(SERVICES, ns, "chat"))
    obj = kube.get(SERVICES, ns, "chat")
    ready = condition(obj, "Ready")
    if real:  # the real Deployment controller owns the gateway's status: with no kubelet its pod never runs
        assert (ready["status"], ready["reason"]) == ("False", "MinimumReplicasUnavailable"), ready
    else:
        assert ready["status"] == "True", ready
        assert obj["status"]["url"] == f"http://chat-lsvc-gateway.{ns}.svc.cluster.local"
    assert obj["status"]["cache"]["filled"] is True and obj["status"]["runtime"] == "vllm"
