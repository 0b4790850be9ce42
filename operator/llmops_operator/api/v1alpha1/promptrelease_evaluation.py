"""PromptRelease's offline evaluation: its examples and dataset, the cached result, and output drift.

scoring/prompt_evaluation.py scores what the target service answered; the blocks here are what a person
writes (EvaluationSpec) and what status reports (EvaluationResult, PromptDrift).
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from llmops_operator.api.v1alpha1.common import KubeModel, LocalObjectReference, StatusModel, cel
from llmops_operator.api.v1alpha1.judge import JudgeService

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
    expected_sources: list[Annotated[str, Field(min_length=1, max_length=1024)]] | None = Field(
        default=None, min_length=1, max_length=20)
    """With retrieval (InferenceService spec.retrieval): the chunk ids or document paths the answer should be
    built from; their share among the cited chunks is the context recall."""

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


FAITHFULNESS_RUBRIC = ("The answer states only what the retrieved context supports: every claim in it can be found "
                       "in the context, and nothing in it contradicts the context. An answer that adds facts the "
                       "context does not contain scores low, however plausible they are.")


class FaithfulnessJudge(JudgeService):
    """An LLM judge of faithfulness: for each evaluation answer of a retrieval service, the judge reads the request's
    variables, the context retrieved for it and the answer, and scores how well the answer keeps to the context."""

    rubric: str = Field(default=FAITHFULNESS_RUBRIC, min_length=1, max_length=4000)
    """What a faithful answer is. Defaults to: only what the retrieved context supports, nothing that contradicts it."""
    max_samples: int = Field(default=20, ge=1, le=100)
    """Judge at most this many answers (those given a retrieved context). Defaults to 20."""


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
    judge: FaithfulnessJudge | None = None
    """Score the candidate's answers' faithfulness to their retrieved context with an LLM judge (a target with
    spec.retrieval): status.evaluation.judgeFaithfulness (0..1) and judgeErrors; the analysis gate
    minJudgeFaithfulness reads it."""

    @model_validator(mode="after")
    def _has_examples(self) -> "EvaluationSpec":
        if self.examples is None and self.dataset is None:
            raise ValueError("evaluation: set examples or dataset")
        return self


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
    context_recall: float | None = None
    """With retrieval: mean share of each example's expectedSources the answer's retrieval cited (0..1)."""
    faithfulness: float | None = None
    """With retrieval: mean share of each answer's content words found in the context it was given (0..1)."""
    judge_faithfulness: float | None = None
    """With evaluation.judge: the judge's mean faithfulness score of the answers as a share of its maxScore (0..1);
    absent when no answer was given a context."""
    judge_errors: int | None = None
    """With evaluation.judge: judgements that failed, timed out or could not be read (each scored 0)."""
    examples: int = 0
    """Examples scored."""
    evaluated_at: str | None = None
    """When it ran (RFC 3339)."""


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
