"""Finalizer passes of the operator's Loop against the API emulator, on bodies as a watch delivers them.

Each test runs the passes itself in a namespace the shared operator does not watch: a skewed object still
gets its cleanup Job, API errors stop being retried quickly and become CleanupFailed, an unreadable spec is
reported with a condition and an Event, and the escape hatch lets an object go at once.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import sys

import pytest

from apiservers import REAL_WHEN_BUILT, apiserver_kind, kube, namespace, new_namespace, operator  # noqa: F401
from kube_helpers import Kube, condition, example

from llmops_operator.api.v1alpha1 import FeatureView, VectorIndex
from llmops_operator.controllers import cleanup
from llmops_operator.controllers.base import Loop
from llmops_operator.controllers.kinds import reconciler_for
from llmops_operator.core.settings import Settings
from llmops_operator.k8s import kubeconfig
from llmops_operator.k8s.client import ApiClient
from llmops_operator.k8s.resources import resource_for

APISERVERS = REAL_WHEN_BUILT  # the real apiserver when `make kube` built it, else the emulator
pytestmark = pytest.mark.integration

IMAGE = "registry.example/llmops-runtime:1.0"
JOB = resource_for("batch/v1", "Job")
EVENT = resource_for("v1", "Event")
RECHECK = 7.0


def passes(kind: type, bodies: list[dict]) -> list[float | None]:
    """Finalizer passes of one Loop (as one operator process runs them) over `bodies`; each pass's answer."""
    async def run() -> list[float | None]:
        async with ApiClient(kubeconfig.load()) as api:
            loop = Loop(reconciler_for(kind), api, Settings(runtime_image=IMAGE, cleanup_recheck_seconds=RECHECK))
            return [await loop.finalize(body) for body in bodies]
    return asyncio.run(run())


def created(kube: Kube, kind: type, body: dict, namespace: str) -> dict:
    kube.apply(body, namespace)
    return kube.get(resource_for("llmops.dev/v1alpha1", kind.info.kind), namespace, body["metadata"]["name"])


def vector_index() -> dict:
    return {"apiVersion": "llmops.dev/v1alpha1", "kind": "VectorIndex", "metadata": {"name": "notes"},
            "spec": {"milvus": {"uri": "http://milvus.milvus:19530", "secretRef": {"name": "milvus", "key": "token"}},
                     "embedding": {"model": "builtin:minilm", "dimension": 384},
                     "source": {"uri": "s3://bucket/notes"}, "deletionPolicy": "Delete"}}


def test_a_skewed_vectorindex_gets_its_cleanup_job_without_pymilvus_in_the_operator(kube, new_namespace, monkeypatch):
    namespace = new_namespace("skew")
    live = created(kube, VectorIndex, vector_index(), namespace)
    skewed = copy.deepcopy(live)
    skewed["status"] = {"vectors": "many", "conditions": "not a list"}
    skewed["spec"]["fieldFromANewerVersion"] = {"x": 1}
    skewed["spec"]["index"] = {"type": "DISKANN"}
    monkeypatch.setitem(sys.modules, "pymilvus", None)  # the operator image has no vector extra
    assert passes(VectorIndex, [skewed]) == [cleanup.POLL_SECONDS]
    jobs = kube.list(JOB, namespace, "llmops.dev/vectorindex=notes")
    assert [j["metadata"]["labels"]["app.kubernetes.io/component"] for j in jobs] == ["cleanup"]
    container = jobs[0]["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == IMAGE and container["command"][-1] == "--drop"
    assert container["env"][0]["valueFrom"]["secretKeyRef"] == {"name": "milvus", "key": "token"}
    assert jobs[0]["metadata"]["ownerReferences"][0]["uid"] == live["metadata"]["uid"]


def test_api_errors_are_retried_a_bounded_number_of_times_then_reported(kube, new_namespace, caplog):
    namespace = "gone-" + new_namespace("x").removeprefix("x-")  # never created: every call is a 404
    body = example("FeatureView")
    body["metadata"].update(namespace=namespace, uid="u-1", generation=1)
    caplog.set_level(logging.INFO, "llmops.cleanup")
    delays = passes(FeatureView, [body] * (cleanup.MAX_API_ATTEMPTS + 1))
    backoff = delays[:cleanup.MAX_API_ATTEMPTS - 1]
    assert backoff == sorted(backoff) and len(set(backoff)) == len(backoff) and all(backoff)
    assert delays[cleanup.MAX_API_ATTEMPTS - 1:] == [RECHECK, RECHECK]
    assert "cleanup failed (ApiError)" in caplog.text and "attempts in a row failed" in caplog.text


def test_an_unreadable_spec_is_reported_and_the_escape_hatch_lets_the_object_go(kube, new_namespace):
    namespace = new_namespace("hatch")
    live = created(kube, FeatureView, example("FeatureView"), namespace)
    unreadable = copy.deepcopy(live)
    del unreadable["spec"]["entities"]
    assert passes(FeatureView, [unreadable]) == [RECHECK]
    after = kube.get(resource_for("llmops.dev/v1alpha1", "FeatureView"), namespace, "driver-stats")
    failed = condition(after, cleanup.CLEANUP_FAILED)
    assert failed["status"] == "True" and failed["reason"] == "UnreadableSpec" and "spec.entities" in failed["message"]
    events = kube.list(EVENT, namespace)
    assert [(e["reason"], e["type"]) for e in events] == [("CleanupFailed", "Warning")]
    assert cleanup.SKIP_ANNOTATION in events[0]["message"]

    unreadable["metadata"].setdefault("annotations", {})[cleanup.SKIP_ANNOTATION] = "true"
    assert passes(FeatureView, [unreadable]) == [None]
    assert not kube.list(JOB, namespace, "llmops.dev/featureview=driver-stats")
    assert "CleanupSkipped" in {e["reason"] for e in kube.list(EVENT, namespace)}
