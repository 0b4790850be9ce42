"""PromptRelease: versioned prompt templates, rolled out to a target InferenceService as a gated canary.

Each released version becomes a content-hashed ConfigMap and a small routing ConfigMap carries the
weights; InferenceServices read status.stable / status.canary to mount them. The canary either holds a
fixed weight (`canary.weight`) or walks `canary.steps`, each step advancing only when its time, its
request count and every analysis gate pass (status/rollout.py decides; the spec is never written back).
"""

from __future__ import annotations

import re
from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from llmops_operator.api.v1alpha1.common import (
    KindInfo, KubeModel, LocalObjectReference, PrinterColumn, Resource, ResourceStatus, StatusModel, age_column,
    cel, list_map, ready_columns, require_unique_names,
)
# The kind's blocks live in modules by concern (evaluation, rollout); the kind's own module names them too.
from llmops_operator.api.v1alpha1.promptrelease_evaluation import (
    EvaluationExample, EvaluationResult, EvaluationSpec, PromptDrift,
)
from llmops_operator.api.v1alpha1.promptrelease_rollout import (
    AnalysisSpec, CanarySpec, GateResult, HistoryEntry, RolloutSpec, RolloutStatus,
)

VERSION_NAME = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"
VARIABLE_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


def placeholders(template: str) -> list[str]:
    """The variable names a template uses, as `{{ name }}`, in order of first use."""
    return list(dict.fromkeys(_PLACEHOLDER.findall(template)))


class ModelParameters(KubeModel):
    """Generation parameters sent with every request that uses this version."""

    temperature: float = Field(default=0.7, ge=0, le=2)
    """Sampling temperature. Defaults to 0.7."""
    max_tokens: int = Field(default=256, ge=1, le=131_072)
    """Most tokens generated per request. Defaults to 256."""
    top_p: float | None = Field(default=None, gt=0, le=1)
    """Nucleus sampling probability mass; the model server's default when absent."""
    stop: list[str] | None = Field(default=None, max_length=8)
    """Sequences that end generation."""


class ChatMessage(KubeModel):
    """One message of a chat prompt; its content may use the version's variables as {{ name }}."""

    role: Literal["system", "user", "assistant"]
    """Who speaks: system (instructions), user or assistant (an example answer)."""
    content: str = Field(min_length=1, max_length=65_536)
    """The message's template."""


class PromptVersion(KubeModel):
    """One version of the prompt: its template and the parameters it is sent with."""

    name: str = Field(min_length=1, max_length=40, pattern=VERSION_NAME)
    """Version name, unique in the release, such as v1 or 2026-05-01."""
    template: str = Field(min_length=1, max_length=65_536)
    """The prompt template; variables are written {{ name }}."""
    variables: list[str] | None = Field(default=None, max_length=32)
    """Variables the template expects; each must appear in the template as {{ name }}. Unchecked when absent."""
    messages: list[ChatMessage] | None = Field(default=None, min_length=1, max_length=16)
    """The chat form of the prompt, rendered by the OpenAI chat endpoint and followed by the client's own messages.
    Absent: the chat endpoint sends the template as one user message. The template still serves the completions
    and KServe v1 endpoints."""
    parameters: ModelParameters = Field(default_factory=ModelParameters)
    """Generation parameters."""

    @field_validator("variables")
    @classmethod
    def _variable_names(cls, variables: list[str] | None) -> list[str] | None:
        for name in variables or ():
            if not re.fullmatch(VARIABLE_NAME, name):
                raise ValueError(f"variable {name!r} is not an identifier (letters, digits, underscore)")
        return variables

    @model_validator(mode="after")
    def _variables_used(self) -> "PromptVersion":
        if self.variables is None:
            return self
        used = placeholders("\n".join([self.template, *(m.content for m in self.messages or ())]))
        missing = [v for v in self.variables if v not in used]
        undeclared = [v for v in used if v not in self.variables]
        if missing:
            raise ValueError(f"variables {missing} do not appear in the template as {{{{ name }}}}")
        if undeclared:
            raise ValueError(f"the template uses {undeclared}, which are not in variables")
        return self


JUDGE_GATE_MESSAGE = "analysis.minJudgeFaithfulness needs evaluation.judge: the gate reads the judge's score"


class PromptReleaseSpec(KubeModel):
    """The prompt's versions, the service that serves them, and the rollout."""

    model_config = {"json_schema_extra": {"x-kubernetes-validations": [
        cel("self.versions.exists(v, v.name == self.rollout.stable)",
            "rollout.stable must name one of versions", ".rollout.stable"),
        cel("!has(self.rollout.canary) || self.versions.exists(v, v.name == self.rollout.canary.version)",
            "rollout.canary.version must name one of versions", ".rollout.canary.version"),
        cel("!has(self.rollbackTo) || self.versions.exists(v, v.name == self.rollbackTo)",
            "rollbackTo must name one of versions", ".rollbackTo"),
        cel("has(self.target) || (!has(self.evaluation) && !has(self.analysis))",
            "target is required when evaluation or analysis is set", ".target"),
        cel("!has(self.analysis) || !has(self.analysis.minJudgeFaithfulness) || "
            "(has(self.evaluation) && has(self.evaluation.judge))", JUDGE_GATE_MESSAGE, ".analysis.minJudgeFaithfulness"),
    ]}}

    target: LocalObjectReference | None = None
    """The InferenceService whose guardrail transformer serves this prompt; its spec.promptReleaseRef must name
    this release. Required for evaluation and analysis (they are measured through it)."""
    versions: list[PromptVersion] = Field(min_length=1, max_length=32, json_schema_extra=list_map("name"))
    """The prompt's versions; names are unique."""
    rollout: RolloutSpec
    """Which versions serve and how traffic is split between them."""
    analysis: AnalysisSpec | None = None
    """Gates on the candidate; absent: none."""
    evaluation: EvaluationSpec | None = None
    """Offline evaluation of each candidate before it gets traffic; absent: none."""
    rollback_to: str | None = Field(default=None, min_length=1, max_length=40)
    """Serve only this version (all traffic) and stop any canary: the rollback a person asks for. Remove it to
    resume the rollout."""

    @field_validator("versions")
    @classmethod
    def _unique_names(cls, versions: list[PromptVersion]) -> list[PromptVersion]:
        require_unique_names(versions, "version names must be unique: ")
        return versions

    @model_validator(mode="after")
    def _rollout_names_versions(self) -> "PromptReleaseSpec":
        names = {v.name for v in self.versions}
        if self.rollout.stable not in names:
            raise ValueError("rollout.stable must name one of versions")
        if self.rollout.canary is not None and self.rollout.canary.version not in names:
            raise ValueError("rollout.canary.version must name one of versions")
        if self.rollback_to is not None and self.rollback_to not in names:
            raise ValueError(f"rollbackTo: {self.rollback_to!r} is not one of versions ({', '.join(sorted(names))})")
        if self.target is None and (self.evaluation is not None or self.analysis is not None):
            raise ValueError("target is required when evaluation or analysis is set")
        judged = self.evaluation is not None and self.evaluation.judge is not None
        if self.analysis is not None and self.analysis.min_judge_faithfulness is not None and not judged:
            raise ValueError(JUDGE_GATE_MESSAGE)
        return self

    def version(self, name: str) -> PromptVersion:
        return next(v for v in self.versions if v.name == name)


class ReleasedVersion(StatusModel):
    """A released version and the ConfigMap holding it."""

    version: str
    """Version name."""
    config_map: str
    """ConfigMap holding the version (template and parameters), content-hashed."""
    weight: int | None = None
    """Percent of traffic the version gets."""


class PromptReleaseStatus(ResourceStatus):
    """Observed state of a PromptRelease."""

    stable: ReleasedVersion | None = None
    """The stable version, its ConfigMap and weight."""
    canary: ReleasedVersion | None = None
    """The candidate version, its ConfigMap and weight; absent when no candidate is routed."""
    routing_config_map: str | None = None
    """ConfigMap holding the traffic split (routing.json) the runtime reads."""
    rollout: RolloutStatus | None = None
    """The rollout's state: step, gates, message."""
    evaluation: EvaluationResult | None = None
    """The candidate's offline evaluation."""
    history: list[HistoryEntry] = Field(default_factory=list, max_length=10)
    """The last 10 releases, promotions, rollbacks and failed evaluations, oldest first."""
    drift: PromptDrift | None = None
    """Output-length drift between the candidate and the stable version."""


class PromptRelease(Resource):
    """PromptRelease versions prompt templates and rolls a new version out as a weighted canary beside the stable one."""

    info: ClassVar[KindInfo] = KindInfo(
        kind="PromptRelease", plural="promptreleases", short_names=["prel"],
        columns=[
            *ready_columns(),
            PrinterColumn(name="Stable", json_path=".status.stable.version"),
            PrinterColumn(name="Canary", json_path=".status.canary.version"),
            PrinterColumn(name="Weight", json_path=".status.canary.weight", type="integer",
                          description="Percent of traffic sent to the canary"),
            PrinterColumn(name="Rollout", json_path=".status.rollout.state", priority=1),
            PrinterColumn(name="Step", json_path=".status.rollout.step", type="integer", priority=1),
            age_column(),
        ],
    )

    kind: Literal["PromptRelease"] = "PromptRelease"
    spec: PromptReleaseSpec
    status: PromptReleaseStatus | None = None
