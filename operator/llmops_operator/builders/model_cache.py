"""The model cache of an InferenceService (spec.model.cache): the weights downloaded once, read by every replica.

Two ways, chosen by what the cluster has:
- KServe's local model cache installed and spec.model.cache.nodeGroups set: a `serving.kserve.io/v1alpha1`
  LocalModelNamespaceCache (sourceModelUri, modelSize, nodeGroups). KServe's node agents download the model onto
  each node of the groups, and KServe mounts that copy into every predictor whose storageUri matches the cache's
  sourceModelUri: the predictor keeps its storageUri.
- otherwise a ReadWriteMany PersistentVolumeClaim, filled once by a Job running KServe's storage initializer
  (every URI scheme KServe reads). The Job downloads into a scratch directory, moves it into place and only
  then writes a marker; the predictor reads `pvc://<claim>/model` (KServe mounts it read-only) and waits in an
  init container until the marker exists, so no replica loads half a model.
Both names carry a hash of the source URI: a new model is a new cache, and the old one is pruned.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llmops_operator.api.v1alpha1.inferenceservice import InferenceService
from llmops_operator.builders import labels
from llmops_operator.builders.naming import owned_name, short_hash
from llmops_operator.builders.pod_security import harden_container, harden_pod

LOCAL_MODEL_CACHE_API = "serving.kserve.io/v1alpha1"
LOCAL_MODEL_CACHE_KIND = "LocalModelNamespaceCache"
COMPONENT = "model-cache"
CACHE_DIR = "/cache"
COMPLETE_MARKER = ".complete"
INITIALIZER = "/storage-initializer/scripts/initializer-entrypoint"
FILL_SCRIPT = (f'set -eu; rm -rf {CACHE_DIR}/.partial {CACHE_DIR}/{COMPLETE_MARKER}; '
               f'{INITIALIZER} "$0" {CACHE_DIR}/.partial; rm -rf {CACHE_DIR}/model; '
               f'mv {CACHE_DIR}/.partial {CACHE_DIR}/model; touch {CACHE_DIR}/{COMPLETE_MARKER}')
WAIT_SCRIPT = f"until [ -f {CACHE_DIR}/{COMPLETE_MARKER} ]; do sleep 5; done"


@dataclass(frozen=True)
class CachePlan:
    """Which cache the service gets and what the predictor reads."""

    kind: str
    """LocalModelNamespaceCache or PersistentVolumeClaim."""
    name: str
    storage_uri: str
    """What the predictor's storageUri becomes."""


def cache_name(obj: InferenceService, model_uri: str) -> str:
    return owned_name(obj, "cache", short_hash(model_uri))


def plan(obj: InferenceService, model_uri: str, local_model_cache_installed: bool) -> CachePlan | None:
    cache = obj.spec.model.cache
    if cache is None:
        return None
    name = cache_name(obj, model_uri)
    if cache.node_groups and local_model_cache_installed:
        return CachePlan(LOCAL_MODEL_CACHE_KIND, name, model_uri)
    return CachePlan("PersistentVolumeClaim", name, f"pvc://{name}/model")


def local_model_cache(obj: InferenceService, cache: CachePlan, model_uri: str) -> dict[str, Any]:
    spec = obj.spec.model.cache
    return {"apiVersion": LOCAL_MODEL_CACHE_API, "kind": LOCAL_MODEL_CACHE_KIND,
            "metadata": {"name": cache.name, "namespace": obj.namespace,
                         "labels": labels.child_labels(obj, COMPONENT)},
            "spec": {"sourceModelUri": model_uri, "modelSize": str(spec.size), "nodeGroups": list(spec.node_groups)}}


def claim(obj: InferenceService, cache: CachePlan) -> dict[str, Any]:
    spec = obj.spec.model.cache
    claim_spec: dict[str, Any] = {"accessModes": ["ReadWriteMany"],
                                  "resources": {"requests": {"storage": str(spec.size)}}}
    if spec.storage_class_name:
        claim_spec["storageClassName"] = spec.storage_class_name
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": cache.name, "namespace": obj.namespace,
                         "labels": labels.child_labels(obj, COMPONENT)},
            "spec": claim_spec}


def fill_job(obj: InferenceService, cache: CachePlan, model_uri: str, image: str) -> dict[str, Any]:
    """The Job that downloads the model into the claim once (a Job is never re-run: its name carries the URI)."""
    container = harden_container({
        "name": "fill", "image": image, "command": ["/bin/sh", "-c", FILL_SCRIPT, model_uri],
        "volumeMounts": [{"name": "cache", "mountPath": CACHE_DIR}],
        "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "2Gi"}},
    })
    pod = harden_pod({"restartPolicy": "OnFailure", "containers": [container],
                      "volumes": [{"name": "cache", "persistentVolumeClaim": {"claimName": cache.name}}]},
                     calls_api=False)
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": cache.name, "namespace": obj.namespace,
                         "labels": labels.child_labels(obj, COMPONENT)},
            "spec": {"backoffLimit": 4, "template": {"metadata": {"labels": labels.child_labels(obj, COMPONENT)},
                                                     "spec": pod}}}


def wait_for_fill(predictor: dict[str, Any], cache: CachePlan, image: str) -> None:
    """Make the predictor's pods wait in an init container until the fill Job's marker exists."""
    container = harden_container({
        "name": "wait-for-model-cache", "image": image, "command": ["/bin/sh", "-c", WAIT_SCRIPT],
        "volumeMounts": [{"name": "model-cache", "mountPath": CACHE_DIR, "readOnly": True}],
        "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"cpu": "100m", "memory": "64Mi"}},
    })
    predictor.setdefault("initContainers", []).append(container)
    predictor.setdefault("volumes", []).append({"name": "model-cache",
                                                "persistentVolumeClaim": {"claimName": cache.name, "readOnly": True}})


def cache_children(obj: InferenceService, cache: CachePlan | None, model_uri: str, image: str
                   ) -> list[dict[str, Any]]:
    if cache is None:
        return []
    if cache.kind == LOCAL_MODEL_CACHE_KIND:
        return [local_model_cache(obj, cache, model_uri)]
    return [claim(obj, cache), fill_job(obj, cache, model_uri, image)]


FILLED, FILLING, FILL_FAILED = "Filled", "Filling", "FillFailed"


def cache_filled(cache: CachePlan, live: list[dict[str, Any]]) -> tuple[str, str]:
    """Where the cache stands (Filled, Filling, FillFailed) and a sentence saying so (pure)."""
    kind = LOCAL_MODEL_CACHE_KIND if cache.kind == LOCAL_MODEL_CACHE_KIND else "Job"
    found = next((c for c in live if c.get("kind") == kind and c["metadata"]["name"] == cache.name), None)
    status = (found or {}).get("status") or {}
    if found is None:
        return FILLING, f"{kind} {cache.name} has not been created yet"
    if kind == "Job":
        if status.get("succeeded"):
            return FILLED, f"Job {cache.name} downloaded the model into claim {cache.name}"
        failed = next((c for c in status.get("conditions") or [] if c.get("type") == "Failed"
                       and c.get("status") == "True"), None)
        if failed:
            return FILL_FAILED, f"Job {cache.name} failed: {failed.get('message') or failed.get('reason')}"
        return FILLING, f"Job {cache.name} is downloading the model ({status.get('failed', 0)} failed attempts)"
    copies = status.get("copies") or {}
    total, available = copies.get("total") or 0, copies.get("available") or 0
    if total and available >= total:
        return FILLED, f"{available} of {total} node copies downloaded"
    state = FILL_FAILED if copies.get("failed") and not available else FILLING
    return state, f"{available} of {total} node copies downloaded ({copies.get('failed') or 0} failed)"
