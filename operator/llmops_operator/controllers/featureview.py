"""FeatureView controller: Feast repository ConfigMap, apply Job, materialize Job or CronJob; status from them."""

from __future__ import annotations

from typing import Any

from llmops_operator.api.v1alpha1.featureview import FeatureView
from llmops_operator.builders.feast import build_feast
from llmops_operator.builders.progress import build_progress_configmap, build_reporter_rbac, progress_configmap_name
from llmops_operator.controllers.base import Context, Observation, Reconciler, Refs
from llmops_operator.k8s.resources import resource_for
from llmops_operator.status.batchjob import find
from llmops_operator.status.featureview import featureview_observation

JOB = resource_for("batch/v1", "Job")
CRONJOB = resource_for("batch/v1", "CronJob")
CONFIGMAP = resource_for("v1", "ConfigMap")


class FeatureViewReconciler(Reconciler):
    resource = FeatureView
    watches = (JOB, CRONJOB, CONFIGMAP)

    def children(self, obj: FeatureView, ctx: Context, refs: Refs) -> list[dict[str, Any]]:
        """Progress ConfigMap and reporter RBAC first, then the repository ConfigMap, apply Job, materializer."""
        image = obj.spec.image or ctx.settings.runtime_image
        return [build_progress_configmap(obj), *build_reporter_rbac(obj), *build_feast(obj, image)]

    def status(self, obj: FeatureView, live: list[dict[str, Any]], facts: Any, ctx: Context,
               refs: Refs) -> Observation:
        jobs = [c for c in live if c["kind"] in ("Job", "CronJob")]
        apply_job, materialize = jobs[0], (jobs[1] if len(jobs) > 1 else None)
        progress = find(live, "ConfigMap", progress_configmap_name(obj))
        return featureview_observation(obj, apply_job, materialize, progress)

    def projected_status(self, obj: FeatureView, ctx: Context) -> dict[str, Any] | None:
        ready = {"type": "Ready", "status": "True", "reason": "Ready"}
        return {"phase": "Ready", "conditions": [ready], "registered": True}
