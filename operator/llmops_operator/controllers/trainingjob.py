"""TrainingJob controller: one KubeRay RayJob per run; status mirrors it, with cost and budget."""

from __future__ import annotations

from typing import Any

from llmops_operator.api.v1alpha1.trainingjob import TrainingJob
from llmops_operator.builders.runconfig import output_uri, training_run_config
from llmops_operator.controllers.base import Context, Observation, Reconciler, Refs
from llmops_operator.controllers.jobs import CONFIGMAP, RAYJOB, check_gpu_type, job_children
from llmops_operator.status.jobs import job_observation


class TrainingJobReconciler(Reconciler):
    resource = TrainingJob
    watches = (RAYJOB, CONFIGMAP)

    def check(self, obj: TrainingJob, ctx: Context) -> None:
        check_gpu_type(obj, ctx)

    def children(self, obj: TrainingJob, ctx: Context, refs: Refs) -> list[dict[str, Any]]:
        return job_children(obj, training_run_config(obj), ctx)

    def status(self, obj: TrainingJob, live: list[dict[str, Any]], facts: Any, ctx: Context,
               refs: Refs) -> Observation:
        observation = job_observation(obj.spec, live[-1], live[0], ctx.catalog, ctx.now, obj.status)
        if observation.phase == "Succeeded":
            observation.fields["outputUri"] = output_uri(obj)
        return observation

    def projected_status(self, obj: TrainingJob, ctx: Context) -> dict[str, Any] | None:
        ready = {"type": "Ready", "status": "True", "reason": "Succeeded"}
        return {"phase": "Succeeded", "conditions": [ready], "outputUri": output_uri(obj)}
