"""PromptRelease (placeholder until its API lands)."""

from __future__ import annotations

from typing import ClassVar, Literal

from llmops_operator.api.v1alpha1.common import KindInfo, KubeModel, Resource, ResourceStatus, age_column, ready_columns


class PromptReleaseSpec(KubeModel):
    """Spec of a PromptRelease."""


class PromptReleaseStatus(ResourceStatus):
    """Observed state of a PromptRelease."""


class PromptRelease(Resource):
    """PromptRelease."""

    info: ClassVar[KindInfo] = KindInfo(kind="PromptRelease", plural="promptreleases", short_names=["prel"],
                                        columns=[*ready_columns(), age_column()])

    kind: Literal["PromptRelease"] = "PromptRelease"
    spec: PromptReleaseSpec
    status: PromptReleaseStatus | None = None
