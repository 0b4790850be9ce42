"""FeatureView (placeholder until its API lands)."""

from __future__ import annotations

from typing import ClassVar, Literal

from llmops_operator.api.v1alpha1.common import KindInfo, KubeModel, Resource, ResourceStatus, age_column, ready_columns


class FeatureViewSpec(KubeModel):
    """Spec of a FeatureView."""


class FeatureViewStatus(ResourceStatus):
    """Observed state of a FeatureView."""


class FeatureView(Resource):
    """FeatureView."""

    info: ClassVar[KindInfo] = KindInfo(kind="FeatureView", plural="featureviews", short_names=["fv"],
                                        columns=[*ready_columns(), age_column()])

    kind: Literal["FeatureView"] = "FeatureView"
    spec: FeatureViewSpec
    status: FeatureViewStatus | None = None
