"""TrainingJob controller: one KubeRay RayJob per run; status mirrors it, with cost and budget.

A dataset read from a Feast feature service waits for its FeatureView (condition DatasetReady):
until the view exists and is Ready no RayJob is built; then the run config carries the view's
Feast repository files and the Ray pods mount the claims its store lives on.
"""

from __future__ import annotations

from typing import Any

from llmops_operator.api.v1alpha1.featureview import FeatureView
from llmops_operator.api.v1alpha1.trainingjob import TrainingJob
from llmops_operator.builders.feast import reader_files, store_claims
from llmops_operator.builders.rayjob import claim_volume, pvc_claims
from llmops_operator.builders.runconfig import output_uri, training_run_config
from llmops_operator.controllers.base import Context, InvalidSpec, Observation, Reconciler, Refs, parse
from llmops_operator.controllers.jobs import CONFIGMAP, RAYJOB, check_gpu_type, job_children, run_observation
from llmops_operator.core import conditions as cond
from llmops_operator.status.jobs import waiting_observation

DATASET_READY = "DatasetReady"
"""Set only for a featureService dataset: True once its FeatureView is Ready; False (the job waits) before.
A run that has started keeps its RayJob while the view is, say, re-registering: it read its rows at start."""


def feature_view(job: TrainingJob, refs: Refs) -> tuple[FeatureView | None, cond.Observed | None]:
    """The dataset's FeatureView once it is Ready, or None and why the job waits; (None, None) for a file."""
    source = job.spec.dataset.feature_service
    if source is None:
        return None, None
    name = source.feature_view.name
    body = refs.get(("FeatureView", name))
    if body is None:
        return None, cond.false(DATASET_READY, "FeatureViewNotFound",
                                f"dataset.featureService.featureView: FeatureView {name!r} does not exist "
                                "in this namespace")
    status = body.get("status") or {}
    ready = cond.ready_of(status)
    started = job.status is not None and job.status.ray_job is not None
    if ready.get("status") != "True" and not started:
        why = f": {ready['message']}" if ready.get("message") else ""
        return None, cond.false(DATASET_READY, "FeatureViewNotReady",
                                f"waiting for FeatureView {name!r} to be Ready "
                                f"(phase {status.get('phase', 'Pending')}){why}")
    try:
        view = parse(FeatureView, body)
    except InvalidSpec as err:
        return None, cond.false(DATASET_READY, "FeatureViewInvalid", f"FeatureView {name!r}: {err}")
    if ready.get("status") != "True":
        return view, cond.true(DATASET_READY, "RunStarted", f"the run read feature service {source.service!r} "
                               f"when it started; FeatureView {name!r} is now {status.get('phase', 'Pending')}")
    return view, cond.true(DATASET_READY, "FeatureViewReady",
                           f"feature service {source.service!r} of FeatureView {name!r}")


def store_volumes(job: TrainingJob, view: FeatureView) -> list[dict[str, Any]]:
    """Volumes for the claims the view's store needs that the job's own URIs do not already mount."""
    own = set(pvc_claims(job))
    return [claim_volume(claim) for claim in store_claims(view) if claim not in own]


class TrainingJobReconciler(Reconciler):
    resource = TrainingJob
    watches = (RAYJOB, CONFIGMAP)
    referenced_kinds = ("FeatureView",)

    def check(self, obj: TrainingJob, ctx: Context) -> None:
        check_gpu_type(obj, ctx)

    def references(self, obj: TrainingJob) -> list[tuple[str, str]]:
        source = obj.spec.dataset.feature_service
        return [("FeatureView", source.feature_view.name)] if source else []

    def children(self, obj: TrainingJob, ctx: Context, refs: Refs) -> list[dict[str, Any]] | None:
        view, dataset_ready = feature_view(obj, refs)
        if dataset_ready is None:
            return job_children(obj, training_run_config(obj), ctx)
        if view is None:
            return None  # not decidable until the reference is Ready: keep what runs
        files = reader_files(view)
        return job_children(obj, training_run_config(obj, files), ctx, extra_volumes=store_volumes(obj, view),
                            inputs={"featureView": files})

    def status(self, obj: TrainingJob, live: list[dict[str, Any]], facts: Any, ctx: Context,
               refs: Refs) -> Observation:
        view, dataset_ready = feature_view(obj, refs)
        if dataset_ready is not None and view is None:
            return waiting_observation(dataset_ready, obj.spec, ctx.catalog, ctx.now)
        observation, _ = run_observation(obj, live, ctx)
        if dataset_ready is not None:
            observation.conditions.insert(0, dataset_ready)
        if observation.phase == "Succeeded":
            observation.fields["outputUri"] = output_uri(obj)
        return observation

    def projected_status(self, obj: TrainingJob, ctx: Context) -> dict[str, Any] | None:
        ready = {"type": "Ready", "status": "True", "reason": "Succeeded"}
        return {"phase": "Succeeded", "conditions": [ready], "outputUri": output_uri(obj)}
