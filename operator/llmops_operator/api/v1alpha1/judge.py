"""An LLM judge, as FineTune and PromptRelease evaluations name one: an InferenceService, a rubric, bounds."""

from __future__ import annotations

from pydantic import Field

from llmops_operator.api.v1alpha1.common import KubeModel, LocalObjectReference


class JudgeService(KubeModel):
    """An LLM judge: an InferenceService's chat endpoint scores each answer against a rubric."""

    service_ref: LocalObjectReference
    """The InferenceService in this namespace that judges (its OpenAI chat endpoint); the evaluation waits until
    it is Ready."""
    rubric: str = Field(min_length=1, max_length=4000)
    """What a good answer is; the judge reads it with what the answer was given and the answer to score."""
    max_score: int = Field(default=10, ge=1, le=100)
    """The judge answers an integer from 0 to maxScore; status reports the mean as a share of it (0..1).
    Defaults to 10."""
    timeout_seconds: int = Field(default=30, ge=1, le=300)
    """Longest wait for one judgement; a judgement that times out, fails or cannot be read scores 0 and is counted
    in judgeErrors. Defaults to 30."""
    max_samples: int = Field(default=20, ge=1, le=500)
    """Judge at most this many answers. Defaults to 20."""
