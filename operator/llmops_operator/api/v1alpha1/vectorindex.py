"""VectorIndex (placeholder until its API lands)."""

from __future__ import annotations

from typing import ClassVar, Literal

from llmops_operator.api.v1alpha1.common import KindInfo, KubeModel, Resource, ResourceStatus, age_column, ready_columns


class VectorIndexSpec(KubeModel):
    """Spec of a VectorIndex."""


class VectorIndexStatus(ResourceStatus):
    """Observed state of a VectorIndex."""


class VectorIndex(Resource):
    """VectorIndex."""

    info: ClassVar[KindInfo] = KindInfo(kind="VectorIndex", plural="vectorindexes", short_names=["vidx"],
                                        columns=[*ready_columns(), age_column()])

    kind: Literal["VectorIndex"] = "VectorIndex"
    spec: VectorIndexSpec
    status: VectorIndexStatus | None = None
