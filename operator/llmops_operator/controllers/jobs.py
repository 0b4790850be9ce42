"""What TrainingJob and FineTune share in their controllers: configuration checks and the RayJob child."""

from __future__ import annotations

from typing import Any

from llmops_operator.api.v1alpha1.finetune import FineTune
from llmops_operator.api.v1alpha1.trainingjob import TrainingJob
from llmops_operator.builders.rayjob import build_rayjob
from llmops_operator.controllers.base import Context, InvalidSpec
from llmops_operator.k8s.resources import resource_for
from llmops_operator.scoring.cost import UnknownGpuType, gpu_price

RAYJOB = resource_for("ray.io/v1", "RayJob")


def check_gpu_type(obj: TrainingJob | FineTune, ctx: Context) -> None:
    resources = obj.spec.resources
    if resources.gpus_per_worker:
        try:
            gpu_price(ctx.catalog, resources.gpu_type)
        except UnknownGpuType as err:
            raise InvalidSpec(f"spec.resources.gpuType: {err}") from None


def rayjob_for(obj: TrainingJob | FineTune, run_config: dict[str, Any], ctx: Context,
               extra_volumes: list[dict[str, Any]] = ()) -> dict[str, Any]:
    return build_rayjob(obj, run_config, image=obj.spec.image or ctx.settings.runtime_image,
                        ray_version=ctx.settings.ray_version, catalog=ctx.catalog, extra_volumes=extra_volumes)
