"""PromptRelease's rollout: the canary and its steps, the analysis gates, and the rollout's status blocks.

status/rollout.py decides each pass from these; the spec is never written back.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from llmops_operator.api.v1alpha1.common import KubeModel, StatusModel, cel
from llmops_operator.api.v1alpha1.units import Duration

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
    min_context_recall: float | None = Field(default=None, ge=0, le=1)
    """Lowest offline context recall (0..1, examples with expectedSources on a retrieval service)."""
    min_faithfulness: float | None = Field(default=None, ge=0, le=1)
    """Lowest offline faithfulness (0..1): the share of an answer's words found in its retrieved context."""
    min_judge_faithfulness: float | None = Field(default=None, ge=0, le=1)
    """Lowest offline faithfulness as evaluation.judge scores it (0..1); a judge that cannot be reached scores 0."""
    max_latency_p99_ms: float | None = Field(default=None, gt=0, alias="maxLatencyP99Ms")
    """Highest p99 latency of the target service in milliseconds (service-wide: latency is not per version)."""


GatePhase = Literal["Successful", "Failed", "Inconclusive"]


class GateResult(StatusModel):
    """One gate's measurement, shaped like an Argo Rollouts AnalysisRun metric result."""

    metric: str
    """The gate: evaluationScore, evaluationSafety, contextRecall, faithfulness, judgeFaithfulness, safety,
    costPer1kTokens or latencyP99Ms."""
    value: float | None = None
    """The measured value; absent when there is nothing to measure yet."""
    threshold: float
    """The spec's bound (a minimum or a maximum, by metric)."""
    phase: GatePhase
    """Successful, Failed, or Inconclusive (no data yet: blocks advancing, never rolls back)."""
    message: str | None = None
    """Why, in a sentence."""


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
    reason: str | None = None
    """The action that put the rollout in its state, for programs (the message is for people): ServeStable,
    Evaluate, Reject, Hold, Step, Promote, Rollback or RollbackRequested."""


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
