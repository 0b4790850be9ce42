"""InferenceService (placeholder until its API lands)."""

from __future__ import annotations

from typing import ClassVar, Literal

from llmops_operator.api.v1alpha1.common import KindInfo, KubeModel, Resource, ResourceStatus, age_column, ready_columns


class InferenceServiceSpec(KubeModel):
    """Spec of a InferenceService."""


class InferenceServiceStatus(ResourceStatus):
    """Observed state of a InferenceService."""


class InferenceService(Resource):
    """InferenceService."""

    info: ClassVar[KindInfo] = KindInfo(kind="InferenceService", plural="inferenceservices", short_names=["lsvc"],
                                        columns=[*ready_columns(), age_column()])

    kind: Literal["InferenceService"] = "InferenceService"
    spec: InferenceServiceSpec
    status: InferenceServiceStatus | None = None
