"""Guardrail (placeholder until its API lands)."""

from __future__ import annotations

from typing import ClassVar, Literal

from llmops_operator.api.v1alpha1.common import KindInfo, KubeModel, Resource, ResourceStatus, age_column, ready_columns


class GuardrailSpec(KubeModel):
    """Spec of a Guardrail."""


class GuardrailStatus(ResourceStatus):
    """Observed state of a Guardrail."""


class Guardrail(Resource):
    """Guardrail."""

    info: ClassVar[KindInfo] = KindInfo(kind="Guardrail", plural="guardrails", short_names=["grail"],
                                        columns=[*ready_columns(), age_column()])

    kind: Literal["Guardrail"] = "Guardrail"
    spec: GuardrailSpec
    status: GuardrailStatus | None = None
