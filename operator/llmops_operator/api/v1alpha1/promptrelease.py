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
    cel, list_map, ready_columns,
)
from llmops_operator.api.v1alpha1.units import Duration

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


class PromptVersion(KubeModel):
    """One version of the prompt: its template and the parameters it is sent with."""

    name: str = Field(min_length=1, max_length=40, pattern=VERSION_NAME)
    """Version name, unique in the release, such as v1 or 2026-05-01."""
    template: str = Field(min_length=1, max_length=65_536)
    """The prompt template; variables are written {{ name }}."""
    variables: list[str] | None = Field(default=None, max_length=32)
    """Variables the template expects; each must appear in the template as {{ name }}. Unchecked when absent."""
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
        used = placeholders(self.template)
        missing = [v for v in self.variables if v not in used]
        undeclared = [v for v in used if v not in self.variables]
        if missing:
            raise ValueError(f"variables {missing} do not appear in the template as {{{{ name }}}}")
        if undeclared:
            raise ValueError(f"the template uses {undeclared}, which are not in variables")
        return self


MAX_STEPS = 10


class CanaryStep(KubeModel):
    """One step of a canary: the candidate's share of traffic and what it must show before the next step."""

    weight: int = Field(ge=1, le=100)
    """Percent of requests (1..100) the candidate gets during this step."""
    min_duration: Duration = "0s"
    """Time the step lasts at least, such as 10m. Defaults to 0s."""
    min_requests: int = Field(default=0, ge=0, le=100_000_000)
    """Requests the candidate must serve during this step before it may advance. Defaults to 0."""


def _steps_increase_rule() -> str:
    indices = ", ".join(str(i) for i in range(MAX_STEPS - 1))
    return f"[{indices}].all(i, i + 1 >= size(self) || self[i].weight < self[i + 1].weight)"


class CanarySpec(KubeModel):
    """The candidate version and how it gets traffic: a fixed weight, or steps that end in promotion."""

    model_config = {"json_schema_extra": {"x-kubernetes-validations": [
        cel("!(has(self.weight) && has(self.steps))", "rollout.canary: set weight or steps, not both"),
    ]}}

    version: str = Field(min_length=1, max_length=40)
    """Name of the candidate version (one of versions)."""
    weight: int | None = Field(default=None, ge=0, le=100)
    """A fixed percent of requests (0..100) for the candidate, held until the spec changes; never promoted.
    Defaults to 10 when steps are absent."""
    steps: list[CanaryStep] | None = Field(default=None, min_length=1, max_length=MAX_STEPS, json_schema_extra={
        "x-kubernetes-validations": [cel(_steps_increase_rule(), "rollout.canary.steps: weights must increase")]})
    """Progressive steps with increasing weights; after the last one the candidate is promoted to stable.
    A single step of weight 100 releases the candidate at once after its evaluation passes."""

    @field_validator("steps")
    @classmethod
    def _weights_increase(cls, steps: list[CanaryStep] | None) -> list[CanaryStep] | None:
        for index, (before, after) in enumerate(zip(steps or (), (steps or ())[1:])):
            if after.weight <= before.weight:
                raise ValueError(f"weights must increase: steps[{index + 1}].weight {after.weight} is not above "
                                 f"steps[{index}].weight {before.weight}")
        return steps

    @model_validator(mode="after")
    def _weight_or_steps(self) -> "CanarySpec":
        if self.weight is not None and self.steps is not None:
            raise ValueError("rollout.canary: set weight or steps, not both")
        return self

    @property
    def progressive(self) -> bool:
        return self.steps is not None

    def effective_steps(self) -> list[CanaryStep]:
        """The steps the rollout walks; a fixed weight is one step that is held (never promoted)."""
        if self.steps is not None:
            return list(self.steps)
        # model_construct: a fixed weight may be 0 (routed, no traffic), which a step may not.
        return [CanaryStep.model_construct(weight=10 if self.weight is None else self.weight, min_duration="0s",
                                           min_requests=0)]


class RolloutSpec(KubeModel):
    """Which version serves, and which one is being tried."""

    model_config = {"json_schema_extra": {"x-kubernetes-validations": [
        cel("!has(self.canary) || self.canary.version != self.stable",
            "rollout.canary.version must differ from rollout.stable", ".canary.version"),
    ]}}

    stable: str = Field(min_length=1, max_length=40)
    """Name of the version that serves by default (one of versions)."""
    canary: CanarySpec | None = None
    """A candidate version and its traffic share; absent when only the stable version serves."""
    strategy: Literal["random", "sticky"] = "random"
    """How the runtime picks a version per request: random (by weight) or sticky (by a hash of stickyKey, so a user
    keeps seeing the same version). Defaults to random."""
    sticky_key: str = Field(default="x-user-id", min_length=1, max_length=128)
    """Request header hashed by the sticky strategy. Defaults to x-user-id."""

    @model_validator(mode="after")
    def _canary_differs(self) -> "RolloutSpec":
        if self.canary is not None and self.canary.version == self.stable:
            raise ValueError("rollout.canary.version must differ from rollout.stable")
        return self


class AnalysisSpec(KubeModel):
    """Gates a candidate must pass: before traffic (evaluation score) and at every step (live metrics)."""

    min_evaluation_score: float | None = Field(default=None, ge=0, le=1)
    """Lowest offline evaluation score (0..1) that lets the candidate get traffic."""
    min_safety: float | None = Field(default=None, ge=0, le=1)
    """Lowest safety score (0..1): offline, of the evaluation outputs; live, of the candidate's own requests."""
    max_cost_per1k_tokens: float | None = Field(default=None, ge=0, alias="maxCostPer1kTokens")
    """Highest cost per 1,000 tokens of the target service (service-wide, from its status.cost)."""
    max_latency_p99_ms: float | None = Field(default=None, gt=0, alias="maxLatencyP99Ms")
    """Highest p99 latency of the target service in milliseconds (service-wide: latency is not per version)."""


class EvaluationExample(KubeModel):
    """One evaluation case: the variables sent and what a good output looks like."""

    variables: dict[str, str] = Field(default_factory=dict)
    """Values of the template's variables."""
    expected: str | None = Field(default=None, max_length=16_384)
    """The reference output, compared with the metric (rougeL or exactMatch)."""
    contains: str | None = Field(default=None, min_length=1, max_length=1024)
    """Text the output must contain (case-insensitive)."""
    regex: str | None = Field(default=None, min_length=1, max_length=1024)
    """A regular expression the output must match somewhere."""

    @field_validator("regex")
    @classmethod
    def _compiles(cls, pattern: str | None) -> str | None:
        if pattern is not None:
            try:
                re.compile(pattern)
            except re.error as err:
                raise ValueError(f"not a regular expression: {err}") from None
        return pattern


class ConfigMapKey(KubeModel):
    """A key of a ConfigMap in the same namespace."""

    name: str = Field(min_length=1, max_length=253)
    """Name of the ConfigMap."""
    key: str = Field(min_length=1, max_length=253)
    """Key inside the ConfigMap's data."""


class EvaluationSpec(KubeModel):
    """Offline evaluation of a candidate through the target service before it gets any traffic."""

    model_config = {"json_schema_extra": {"x-kubernetes-validations": [
        cel("has(self.examples) || has(self.dataset)", "evaluation: set examples or dataset"),
    ]}}

    examples: list[EvaluationExample] | None = Field(default=None, min_length=1, max_length=100)
    """Inline examples."""
    dataset: ConfigMapKey | None = None
    """A ConfigMap key holding examples as JSON Lines ({variables, expected?, contains?, regex?} per line)."""
    metric: Literal["rougeL", "exactMatch"] = "rougeL"
    """How an output is compared with `expected`. Defaults to rougeL."""
    guardrail_ref: LocalObjectReference | None = None
    """A Guardrail whose policy checks every output (unsafe: blocked or redacted); by default the target's
    own guardrail verdicts, as the service returns them, count."""

    @model_validator(mode="after")
    def _has_examples(self) -> "EvaluationSpec":
        if self.examples is None and self.dataset is None:
            raise ValueError("evaluation: set examples or dataset")
        return self


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
        names = [v.name for v in versions]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"version names must be unique: {twice[0]!r} appears more than once")
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


GatePhase = Literal["Successful", "Failed", "Inconclusive"]


class GateResult(StatusModel):
    """One gate's measurement, shaped like an Argo Rollouts AnalysisRun metric result."""

    metric: str
    """The gate: evaluationScore, evaluationSafety, safety, costPer1kTokens or latencyP99Ms."""
    value: float | None = None
    """The measured value; absent when there is nothing to measure yet."""
    threshold: float
    """The spec's bound (a minimum or a maximum, by metric)."""
    phase: GatePhase
    """Successful, Failed, or Inconclusive (no data yet: blocks advancing, never rolls back)."""
    message: str | None = None
    """Why, in a sentence."""


class EvaluationResult(StatusModel):
    """The offline evaluation of one candidate, cached by its content hash so it runs once per version."""

    version: str
    """The version evaluated."""
    hash: str
    """Content hash of the version evaluated; an edited template is evaluated again."""
    score: float | None = None
    """Mean score of the examples (0..1)."""
    safety: float | None = None
    """Share of outputs neither blocked nor redacted (0..1)."""
    examples: int = 0
    """Examples scored."""
    evaluated_at: str | None = None
    """When it ran (RFC 3339)."""


class RolloutStatus(StatusModel):
    """Where the candidate stands; read back each pass, so the rollout is level-based and survives restarts."""

    state: str
    """Stable, Evaluating, EvaluationFailed, Canary (a fixed weight), Progressing, Promoted or RolledBack."""
    candidate: str | None = None
    """The candidate version."""
    candidate_hash: str | None = None
    """Content hash of the candidate; a new hash restarts the rollout."""
    step: int | None = None
    """Index of the current step (0-based)."""
    steps: int | None = None
    """Number of steps."""
    step_started_at: str | None = None
    """When the current step began (RFC 3339)."""
    requests_at_step_start: int | None = None
    """The candidate's request counter when the step began; requests in the step are counted from it."""
    step_requests: int | None = None
    """Requests the candidate served in the current step."""
    gates: list[GateResult] = Field(default_factory=list)
    """The gates of the last pass."""
    message: str | None = None
    """What the rollout waits for, or why it stopped."""


class HistoryEntry(StatusModel):
    """One event in the release's life."""

    version: str
    """The version concerned."""
    hash: str | None = None
    """Its content hash."""
    event: str
    """Released, Promoted, RolledBack or EvaluationFailed."""
    at: str
    """When (RFC 3339)."""
    reason: str | None = None
    """Why, for rollbacks and failed evaluations."""


class PromptDrift(StatusModel):
    """How the candidate's output lengths differ from the stable version's."""

    metric: str | None = None
    """The drift metric (psi)."""
    score: float | None = None
    """The score; absent when there is not enough traffic."""
    compared: str | None = None
    """The versions compared, candidate vs stable."""
    message: str | None = None
    """What was compared, or why nothing was."""


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
