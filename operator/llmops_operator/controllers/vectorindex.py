"""VectorIndex controller: an ingest Job per vectors-defining spec (and a reindex CronJob); status from the Job and its report.

On delete with deletionPolicy Delete, the operator drops the alias and the physical collections
this object built (pymilvus, imported only then, so the base install runs without the vector extra).
"""

from __future__ import annotations

import asyncio
import base64
import logging
from typing import Any

import kopf

from llmops_operator.api.v1alpha1.vectorindex import VectorIndex
from llmops_operator.builders.ingest import COMPONENT, build_ingest, physical_collection
from llmops_operator.builders.labels import child_in_role
from llmops_operator.builders.progress import build_progress_configmap, build_reporter_rbac, progress_configmap_name
from llmops_operator.controllers.base import Context, Observation, Reconciler, Refs
from llmops_operator.k8s.client import ApiClient, ApiError
from llmops_operator.k8s.resources import resource_for
from llmops_operator.status.batchjob import find
from llmops_operator.status.vectorindex import vectorindex_observation

JOB = resource_for("batch/v1", "Job")
CRONJOB = resource_for("batch/v1", "CronJob")
CONFIGMAP = resource_for("v1", "ConfigMap")
SECRET = resource_for("v1", "Secret")
RETRY_SECONDS = 10
"""How soon a delete retries when Milvus is busy (a Milvus Lite file open in an ingest Job) or unreachable."""

log = logging.getLogger("llmops.vectorindex")


def drop_collections(uri: str, token: str | None, pvc_root: str | None, alias: str, owner: str) -> list[str]:
    """Blocking: drop the alias and the collections `owner` built; what was dropped."""
    from llmops_operator.backends import milvus

    database = milvus.lite_path(uri, pvc_root)
    if database is not None and not database.exists():
        return []
    with milvus.connect(uri, token, pvc_root) as client:
        return milvus.drop_index(client, alias, owner)


async def milvus_token(obj: VectorIndex, api: ApiClient) -> str | None:
    ref = obj.spec.milvus.secret_ref
    if ref is None:
        return None
    secret = await api.get_or_none(SECRET, obj.namespace, ref.name) or {}
    raw = (secret.get("data") or {}).get(ref.key)
    if raw is None:
        raise kopf.TemporaryError(f"milvus.secretRef: Secret {ref.name} has no key {ref.key!r}", delay=RETRY_SECONDS)
    return base64.b64decode(raw).decode()


def reachable_database(obj: VectorIndex, pvc_root: str | None) -> bool:
    """Whether the operator can open the Milvus the spec names (a pvc:// database only where claims are mounted)."""
    return not obj.spec.milvus.uri.startswith("pvc://") or pvc_root is not None


class VectorIndexReconciler(Reconciler):
    resource = VectorIndex
    watches = (JOB, CRONJOB, CONFIGMAP)
    has_finalizer = True

    async def finalize(self, obj: VectorIndex, ctx: Context, api: ApiClient) -> None:
        """deletionPolicy Delete: drop the alias and every physical collection of this object; Retain: nothing."""
        if obj.spec.deletion_policy != "Delete":
            return
        pvc_root = ctx.settings.pvc_root
        if not reachable_database(obj, pvc_root):
            log.warning("VectorIndex %s/%s: deletionPolicy Delete, but the Milvus Lite database %s is on a claim the "
                        "operator does not mount (set LLMOPS_PVC_ROOT); its collections are kept",
                        obj.namespace, obj.name, obj.spec.milvus.uri)
            return
        from llmops_operator.backends.milvus import MilvusError

        try:
            token = await milvus_token(obj, api)
        except ApiError as err:
            raise kopf.TemporaryError(f"milvus.secretRef: {err}", delay=RETRY_SECONDS) from err
        try:
            dropped = await asyncio.to_thread(drop_collections, obj.spec.milvus.uri, token, pvc_root,
                                              obj.collection, f"{obj.namespace}/{obj.name}")
        except MilvusError as err:
            raise kopf.TemporaryError(str(err), delay=RETRY_SECONDS) from err
        log.info("VectorIndex %s/%s deleted with deletionPolicy Delete: dropped %s", obj.namespace, obj.name,
                 ", ".join(dropped) or "nothing (no collection was built)")

    def children(self, obj: VectorIndex, ctx: Context, refs: Refs) -> list[dict[str, Any]]:
        """Progress ConfigMap and reporter RBAC first, then the config ConfigMap, the Job and the CronJob."""
        image = obj.spec.image or ctx.settings.runtime_image
        return [build_progress_configmap(obj), *build_reporter_rbac(obj), *build_ingest(obj, image)]

    def status(self, obj: VectorIndex, live: list[dict[str, Any]], facts: Any, ctx: Context,
               refs: Refs) -> Observation:
        job = child_in_role(live, "Job", COMPONENT)
        progress = find(live, "ConfigMap", progress_configmap_name(obj))
        return vectorindex_observation(obj, physical_collection(obj), job, progress)

    def projected_status(self, obj: VectorIndex, ctx: Context) -> dict[str, Any] | None:
        ready = {"type": "Ready", "status": "True", "reason": "Ingested"}
        return {"phase": "Ready", "conditions": [ready], "collection": obj.collection,
                "physicalCollection": physical_collection(obj), "embeddingModel": obj.spec.embedding.model}
