"""What TrainingJob and FineTune share in their controllers: configuration checks and the RayJob child."""

from __future__ import annotations

from typing import Any

from llmops_operator.api.v1alpha1.finetune import FineTune
from llmops_operator.api.v1alpha1.trainingjob import TrainingJob
from llmops_operator.builders.progress import build_progress_configmap, build_reporter_rbac
from llmops_operator.builders.rayjob import build_rayjob
from llmops_operator.controllers.base import Context, InvalidSpec
from llmops_operator.k8s.resources import resource_for
from llmops_operator.scoring.cost import UnknownGpuType, gpu_price

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
                 extra_volumes: list[dict[str, Any]] = ()) -> list[dict[str, Any]]:
    """The progress ConfigMap, the reporter's RBAC and the RayJob."""
    rayjob = build_rayjob(obj, run_config, image=obj.spec.image or ctx.settings.runtime_image,
                          ray_version=ctx.settings.ray_version, catalog=ctx.catalog, extra_volumes=extra_volumes)
    return [build_progress_configmap(obj), *build_reporter_rbac(obj), rayjob]
