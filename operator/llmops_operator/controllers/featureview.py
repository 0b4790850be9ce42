"""FeatureView controller: Feast repository ConfigMap, apply Job, materialize Job or CronJob; status from them.

On delete the finalizer runs a removal Job (builders/feast.build_removal) and waits for it, so the
view leaves the Feast registry and online store before the object goes. In a namespace that is being
deleted no Job can be created: the view goes without one (its claims go with the namespace).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import kopf

from llmops_operator.api.v1alpha1.featureview import FeatureView
from llmops_operator.builders.feast import (
    APPLY_COMPONENT, MATERIALIZE_COMPONENT, REMOVE_COMPONENT, build_feast, build_removal,
)
from llmops_operator.builders.labels import child_in_role
from llmops_operator.builders.progress import build_progress_configmap, build_reporter_rbac, progress_configmap_name
from llmops_operator.controllers import retrain_loop as retrain
from llmops_operator.controllers.base import Context, Observation, Reconciler, Refs
from llmops_operator.controllers.children import ChildConflict, apply_child
from llmops_operator.k8s.client import ApiClient, ApiError
from llmops_operator.k8s.resources import resource_for
from llmops_operator.status.batchjob import FAILED, SUCCEEDED, find, job_state
from llmops_operator.core import conditions as cond
from llmops_operator.core.contract import owner_body
from llmops_operator.status.featureview import featureview_observation

JOB = resource_for("batch/v1", "Job")
CRONJOB = resource_for("batch/v1", "CronJob")
CONFIGMAP = resource_for("v1", "ConfigMap")
REMOVAL_POLL_SECONDS = 5
REMOVAL_TIMEOUT_SECONDS = 600
log = logging.getLogger("llmops.featureview")


def waited_seconds(job: dict[str, Any], now: datetime) -> float:
    """How long ago the Job was created (0 when the API did not say)."""
    created = cond.parse_rfc3339(job.get("metadata", {}).get("creationTimestamp"))
    return 0.0 if created is None else (now - created).total_seconds()


def namespace_terminating(err: ApiError) -> bool:
    """Whether the API server refused a create because the namespace is being deleted (pure)."""
    causes = (err.body.get("details") or {}).get("causes") or []
    return err.status == 403 and (any(c.get("reason") == "NamespaceTerminating" for c in causes)
                                  or "because it is being terminated" in err.body.get("message", ""))


class FeatureViewReconciler(Reconciler):
    resource = FeatureView
    watches = (JOB, CRONJOB, CONFIGMAP)
    has_finalizer = True

    async def finalize(self, obj: FeatureView, ctx: Context, api: ApiClient) -> None:
        """deletionPolicy Delete: run the removal Job and wait for it (at most REMOVAL_TIMEOUT_SECONDS).

        A removal that fails or never finishes is logged and the object still goes: a stuck
        deletion would be worse than a stale registry entry.
        """
        if obj.spec.deletion_policy != "Delete":
            return
        image = obj.spec.image or ctx.settings.runtime_image
        owner = owner_body(obj)
        where = f"FeatureView {obj.namespace}/{obj.name}"
        try:
            live = [await apply_child(api, child, owner) for child in build_removal(obj, image)]
        except ChildConflict as err:
            log.warning("%s: no removal Job: %s", where, err)
            return
        except ApiError as err:
            if not namespace_terminating(err):
                raise
            log.warning("%s: namespace is being deleted, no removal Job can run there; Feast project %s keeps "
                        "whatever it holds outside the namespace", where, obj.spec.project)
            return
        removal = child_in_role(live, "Job", REMOVE_COMPONENT)
        state = job_state(removal)
        if state.state == SUCCEEDED:
            log.info("%s: removed from Feast project %s", where, obj.spec.project)
        elif state.state == FAILED:
            log.warning("%s: the removal Job %s failed (%s); Feast project %s keeps its objects",
                        where, removal["metadata"]["name"], state.message, obj.spec.project)
        elif waited_seconds(removal, ctx.now) > REMOVAL_TIMEOUT_SECONDS:
            log.warning("%s: the removal Job %s has not finished in %ss (%s); Feast project %s keeps its objects",
                        where, removal["metadata"]["name"], REMOVAL_TIMEOUT_SECONDS, state.message, obj.spec.project)
        else:
            raise kopf.TemporaryError(f"{where}: removing it from Feast: {state.message}", delay=REMOVAL_POLL_SECONDS)

    def children(self, obj: FeatureView, ctx: Context, refs: Refs) -> list[dict[str, Any]]:
        """Progress ConfigMap and reporter RBAC first, then the repository ConfigMap, apply Job, materializer."""
        image = obj.spec.image or ctx.settings.runtime_image
        return [build_progress_configmap(obj), *build_reporter_rbac(obj), *build_feast(obj, image)]

    def status(self, obj: FeatureView, live: list[dict[str, Any]], facts: Any, ctx: Context,
               refs: Refs) -> Observation:
        apply_job = child_in_role(live, "Job", APPLY_COMPONENT)
        materialize = child_in_role(live, "Job", MATERIALIZE_COMPONENT)
        cronjob = child_in_role(live, "CronJob", MATERIALIZE_COMPONENT)
        progress = find(live, "ConfigMap", progress_configmap_name(obj))
        return featureview_observation(obj, apply_job, materialize, progress, cronjob)

    async def act(self, obj: FeatureView, observation: Observation, ctx: Context, api: ApiClient) -> Observation:
        return await retrain.close_loop(obj, observation, ctx, api)

    def projected_status(self, obj: FeatureView, ctx: Context) -> dict[str, Any] | None:
        ready = {"type": "Ready", "status": "True", "reason": "Ready"}
        return {"phase": "Ready", "conditions": [ready], "registered": True}
