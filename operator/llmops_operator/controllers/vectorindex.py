"""VectorIndex controller: an ingest Job per vectors-defining spec (and a reindex CronJob); status from the Job and its report."""

from __future__ import annotations

from typing import Any

from llmops_operator.api.v1alpha1.vectorindex import VectorIndex
from llmops_operator.builders.ingest import build_ingest, physical_collection
from llmops_operator.builders.progress import build_progress_configmap, build_reporter_rbac, progress_configmap_name
from llmops_operator.controllers.base import Context, Observation, Reconciler, Refs
from llmops_operator.k8s.resources import resource_for
from llmops_operator.status.batchjob import find
from llmops_operator.status.vectorindex import vectorindex_observation

JOB = resource_for("batch/v1", "Job")
CRONJOB = resource_for("batch/v1", "CronJob")
CONFIGMAP = resource_for("v1", "ConfigMap")


class VectorIndexReconciler(Reconciler):
    resource = VectorIndex
    watches = (JOB, CRONJOB, CONFIGMAP)

    def children(self, obj: VectorIndex, ctx: Context, refs: Refs) -> list[dict[str, Any]]:
        """Progress ConfigMap and reporter RBAC first, then the config ConfigMap, the Job and the CronJob."""
        image = obj.spec.image or ctx.settings.runtime_image
        return [build_progress_configmap(obj), *build_reporter_rbac(obj), *build_ingest(obj, image)]

    def status(self, obj: VectorIndex, live: list[dict[str, Any]], facts: Any, ctx: Context,
               refs: Refs) -> Observation:
        job = next(c for c in live if c["kind"] == "Job")
        progress = find(live, "ConfigMap", progress_configmap_name(obj))
        return vectorindex_observation(obj, physical_collection(obj), job, progress)

    def projected_status(self, obj: VectorIndex, ctx: Context) -> dict[str, Any] | None:
        ready = {"type": "Ready", "status": "True", "reason": "Ingested"}
        return {"phase": "Ready", "conditions": [ready], "collection": obj.collection,
                "physicalCollection": physical_collection(obj), "embeddingModel": obj.spec.embedding.model}
