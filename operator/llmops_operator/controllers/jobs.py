"""What TrainingJob and FineTune share in their controllers: configuration checks and the RayJob child."""

from __future__ import annotations

from typing import Any

from llmops_operator.api.v1alpha1.finetune import FineTune
from llmops_operator.api.v1alpha1.trainingjob import TrainingJob
from llmops_operator.builders import labels
from llmops_operator.builders.network import ray_network_policy
from llmops_operator.builders.progress import build_progress_configmap, build_reporter_rbac
from llmops_operator.builders.rayjob import build_rayjob
from llmops_operator.controllers.base import Context, InvalidSpec
from llmops_operator.core.contract import Observation
from llmops_operator.k8s.resources import resource_for
from llmops_operator.scoring.cost import UnknownGpuType, gpu_price
from llmops_operator.status.jobs import (
    finished, finished_observation, job_observation, missing_rayjob, rayjob_and_progress,
)

RAYJOB = resource_for("ray.io/v1", "RayJob")
CONFIGMAP = resource_for("v1", "ConfigMap")


def check_gpu_type(obj: TrainingJob | FineTune, ctx: Context) -> None:
    resources = obj.spec.resources
    if resources.gpus_per_worker:
        try:
            gpu_price(ctx.catalog, resources.gpu_type)
        except UnknownGpuType as err:
            raise InvalidSpec(f"spec.resources.gpuType: {err}") from None


def job_children(obj: TrainingJob | FineTune, run_config: dict[str, Any], ctx: Context,
                 extra_volumes: list[dict[str, Any]] = (), inputs: dict[str, Any] | None = None
                 ) -> list[dict[str, Any]]:
    """The progress ConfigMap, the reporter's RBAC and the RayJob; `inputs` are the run's explicit inputs.

    The RayJob of a run that already finished is only observed: deleted, it is not created again."""
    rayjob = build_rayjob(obj, run_config, image=obj.spec.image or ctx.settings.runtime_image,
                          ray_version=ctx.settings.ray_version, catalog=ctx.catalog, extra_volumes=extra_volumes,
                          inputs=inputs)
    if finished(obj.status, rayjob["metadata"]["name"], obj.metadata.generation):
        rayjob["metadata"]["annotations"][labels.OBSERVE_ONLY] = "true"
    children = [build_progress_configmap(obj), *build_reporter_rbac(obj)]
    if ctx.settings.network_policies and "rayClusterSpec" in rayjob["spec"]:
        children.append(ray_network_policy(obj, ctx.settings.control_plane_namespaces))
    return [*children, rayjob]


def run_observation(obj: TrainingJob | FineTune, live: list[dict[str, Any]], ctx: Context
                    ) -> tuple[Observation, dict[str, Any] | None]:
    """The job's observation from its RayJob (or, once a finished run's RayJob is gone, from its last status) and
    the progress ConfigMap it was reduced with."""
    rayjob, progress = rayjob_and_progress(live)
    if rayjob is not None:
        return job_observation(obj.spec, rayjob, progress, ctx.catalog, ctx.now, obj.status), progress
    if obj.status is not None and obj.status.ray_job is not None and \
            finished(obj.status, obj.status.ray_job.name, obj.metadata.generation):
        return finished_observation(obj.status), progress
    return missing_rayjob(obj.spec, ctx.catalog, ctx.now), progress
