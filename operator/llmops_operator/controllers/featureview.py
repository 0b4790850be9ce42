"""FeatureView controller: Feast repository ConfigMap, apply Job, materialize Job or CronJob; status from them.

On delete the finalizer runs a removal Job (builders/feast.build_removal) and waits for it, so the
view leaves the Feast registry and online store before the object goes. In a namespace that is being
deleted no Job can be created: the view goes without one (its claims go with the namespace). A removal
that fails, does not finish, or cannot be created follows controllers/cleanup: bounded retries, then
CleanupFailed with an Event, and the skip-cleanup annotation lets the object go.
"""

from __future__ import annotations

import logging
from typing import Any

from llmops_operator.api.v1alpha1.featureview import FeatureView
from llmops_operator.builders.feast import (
    APPLY_COMPONENT, MATERIALIZE_COMPONENT, REMOVE_COMPONENT, build_feast, build_removal,
)
from llmops_operator.builders.labels import child_in_role
from llmops_operator.builders.progress import build_progress_configmap, build_reporter_rbac, progress_configmap_name
from llmops_operator.controllers import retrain_loop as retrain
from llmops_operator.controllers.base import Context, Observation, Reconciler, Refs
from llmops_operator.controllers.children import ChildConflict, apply_child
from llmops_operator.controllers.cleanup import DONE, Cleanup, failed, job_cleanup, namespace_terminating
from llmops_operator.k8s.client import ApiClient, ApiError
from llmops_operator.k8s.resources import resource_for
from llmops_operator.core.contract import owner_body
from llmops_operator.status.batchjob import find
from llmops_operator.status.featureview import featureview_observation

JOB = resource_for("batch/v1", "Job")
CRONJOB = resource_for("batch/v1", "CronJob")
CONFIGMAP = resource_for("v1", "ConfigMap")
REMOVAL_TIMEOUT_SECONDS = 600
log = logging.getLogger("llmops.featureview")


class FeatureViewReconciler(Reconciler):
    resource = FeatureView
    watches = (JOB, CRONJOB, CONFIGMAP)
    has_finalizer = True

    async def finalize(self, obj: FeatureView, ctx: Context, api: ApiClient) -> Cleanup:
        """deletionPolicy Delete: run the removal Job; Done once it succeeded (Failed when it failed or ran past
        REMOVAL_TIMEOUT_SECONDS, so the object reports CleanupFailed instead of waiting silently)."""
        if obj.spec.deletion_policy != "Delete":
            return DONE
        image = obj.spec.image or ctx.settings.runtime_image
        what = f"removing FeatureView {obj.namespace}/{obj.name} from Feast project {obj.spec.project}"
        try:
            live = [await apply_child(api, child, owner_body(obj)) for child in build_removal(obj, image)]
        except ChildConflict as err:
            return failed("ChildConflict", f"{what}: {err}")
        except ApiError as err:
            if not namespace_terminating(err):
                raise
            log.warning("FeatureView %s/%s: namespace is being deleted, no removal Job can run there; Feast project "
                        "%s keeps whatever it holds outside the namespace", obj.namespace, obj.name, obj.spec.project)
            return DONE
        outcome = job_cleanup(child_in_role(live, "Job", REMOVE_COMPONENT), ctx.now, what,
                              REMOVAL_TIMEOUT_SECONDS)
        if outcome.state == "Done":
            log.info("FeatureView %s/%s: removed from Feast project %s", obj.namespace, obj.name, obj.spec.project)
        return outcome

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
