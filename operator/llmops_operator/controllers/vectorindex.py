"""VectorIndex controller: an ingest Job per vectors-defining spec (and a reindex CronJob); status from the Job and its report.

On delete with deletionPolicy Delete, the finalizer first stops the object's ingest Jobs and reindex
CronJob (so nothing writes while collections are dropped, and no Job holds a Milvus Lite file), then
runs a cleanup Job in the runtime image (builders/ingest.build_cleanup) that drops the alias and the
physical collections this object built. The operator itself never imports pymilvus nor reads the
Milvus Secret: the Job has the client, the kubelet hands it the token, and claims are mounted there.
Failures follow controllers/cleanup (CleanupFailed, the skip-cleanup escape hatch).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from llmops_operator.api.v1alpha1.vectorindex import VectorIndex
from llmops_operator.builders import labels
from llmops_operator.builders.ingest import CLEANUP_COMPONENT, CLEANUP_DEADLINE_SECONDS, COMPONENT, build_cleanup, \
    build_ingest, physical_collection
from llmops_operator.builders.labels import child_in_role
from llmops_operator.builders.progress import build_progress_configmap, build_reporter_rbac, progress_configmap_name
from llmops_operator.controllers import cleanup
from llmops_operator.controllers.base import Context, Observation, Reconciler, Refs
from llmops_operator.controllers.children import ChildConflict, apply_child, controlled_by
from llmops_operator.core import conditions as cond
from llmops_operator.core.contract import owner_body
from llmops_operator.k8s.client import ApiClient, ApiError
from llmops_operator.k8s.resources import resource_for
from llmops_operator.status.batchjob import find
from llmops_operator.status.vectorindex import vectorindex_observation

JOB = resource_for("batch/v1", "Job")
CRONJOB = resource_for("batch/v1", "CronJob")
CONFIGMAP = resource_for("v1", "ConfigMap")
CLEANUP_TIMEOUT_SECONDS = CLEANUP_DEADLINE_SECONDS + 120
"""A cleanup Job not finished by then (its own deadline passed, or it never started) counts as failed."""

log = logging.getLogger("llmops.vectorindex")


STOP_TIMEOUT_SECONDS = 300
"""An ingest Job or CronJob still terminating this long after its deletion (a pod on a lost node) fails the cleanup."""


def terminating_seconds(child: dict[str, Any], now: datetime) -> float:
    """How long ago the child's deletion began (0 when it has not begun or the API did not say)."""
    since = cond.parse_rfc3339(child["metadata"].get("deletionTimestamp"))
    return 0.0 if since is None else (now - since).total_seconds()


async def stop_ingest(obj: VectorIndex, api: ApiClient) -> list[dict[str, Any]]:
    """Delete the object's ingest Jobs and reindex CronJob (pods first); the ones not gone yet."""
    remaining = []
    for kind in (CRONJOB, JOB):
        for child in await api.list(kind, obj.namespace, labels.children_selector(obj)):
            meta = child["metadata"]
            if (meta.get("labels") or {}).get(labels.COMPONENT) == CLEANUP_COMPONENT \
                    or not controlled_by(child, owner_body(obj)):
                continue
            if not meta.get("deletionTimestamp"):
                await api.delete(kind, obj.namespace, meta["name"], propagation="Foreground")
            remaining.append({**child, "kind": kind.kind})  # list items carry no kind on a real API server
    return remaining


def waiting_for(stopping: list[dict[str, Any]], what: str, now: datetime) -> cleanup.Cleanup:
    names = ", ".join(f"{c['kind']} {c['metadata']['name']}" for c in stopping)
    if any(terminating_seconds(c, now) > STOP_TIMEOUT_SECONDS for c in stopping):
        return cleanup.failed("IngestNotStopped", f"{what}: {names} still terminating after {STOP_TIMEOUT_SECONDS}s "
                                                  f"(are its pods on a lost node?); annotate the object "
                                                  f"{cleanup.SKIP_ANNOTATION}=true to leave the collections")
    return cleanup.running(f"{what}: waiting for {names} to stop")


class VectorIndexReconciler(Reconciler):
    resource = VectorIndex
    watches = (JOB, CRONJOB, CONFIGMAP)
    has_finalizer = True

    async def finalize(self, obj: VectorIndex, ctx: Context, api: ApiClient) -> cleanup.Cleanup:
        """deletionPolicy Delete: stop ingesting, then drop the alias and every physical collection of this object
        in a cleanup Job; Retain: nothing."""
        if obj.spec.deletion_policy != "Delete":
            return cleanup.DONE
        what = f"dropping the collections of VectorIndex {obj.namespace}/{obj.name} from {obj.spec.milvus.uri}"
        stopping = await stop_ingest(obj, api)
        if stopping:
            return waiting_for(stopping, what, ctx.now)
        image = obj.spec.image or ctx.settings.runtime_image
        try:
            live = [await apply_child(api, child, owner_body(obj)) for child in build_cleanup(obj, image)]
        except ChildConflict as err:
            return cleanup.failed("ChildConflict", f"{what}: {err}")
        except ApiError as err:
            if not cleanup.namespace_terminating(err):
                raise
            log.warning("VectorIndex %s/%s: its namespace is being deleted, so no cleanup Job can run there; the "
                        "collections of %s stay in %s", obj.namespace, obj.name, obj.collection, obj.spec.milvus.uri)
            return cleanup.DONE
        outcome = cleanup.job_cleanup(child_in_role(live, "Job", CLEANUP_COMPONENT), ctx.now, what,
                                     CLEANUP_TIMEOUT_SECONDS)
        if outcome.state == "Done":
            log.info("VectorIndex %s/%s deleted with deletionPolicy Delete: its collections are dropped",
                     obj.namespace, obj.name)
        return outcome

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
