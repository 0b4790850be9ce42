"""The LLM judge of a PromptRelease evaluation, the pure parts: its spec and bounds, the gate that needs it, the
judge's prompt for a retrieval answer, and the gate's phases (the calls to a real judge are in
tests/integration/test_rag_judge.py)."""

from __future__ import annotations

import pytest

from llmops_operator.api.v1alpha1 import PromptRelease
from llmops_operator.api.v1alpha1.promptrelease_evaluation import FAITHFULNESS_RUBRIC, EvaluationResult
from llmops_operator.api.v1alpha1.promptrelease_rollout import AnalysisSpec
from llmops_operator.backends.judge import variables_text
from llmops_operator.core.contract import InvalidSpec, parse
from llmops_operator.scoring.judge import judge_messages, mean_share
from llmops_operator.status.judge import judge_readiness
from llmops_operator.status.rollout import evaluation_gates

JUDGE = {"serviceRef": {"name": "judge"}}


def release(judge=JUDGE, analysis=None) -> PromptRelease:
    evaluation = {"examples": [{"variables": {"question": "q"}}], **({"judge": judge} if judge else {})}
    spec = {"target": {"name": "docs-qa"}, "versions": [{"name": "v1", "template": "{{ context }} {{ question }}"}],
            "rollout": {"stable": "v1"}, "evaluation": evaluation, **({"analysis": analysis} if analysis else {})}
    return parse(PromptRelease, {"apiVersion": "llmops.dev/v1alpha1", "kind": "PromptRelease",
                                 "metadata": {"name": "docs-qa-prompt", "namespace": "ml"}, "spec": spec})


def test_the_judge_needs_only_its_service_and_defaults_to_a_faithfulness_rubric():
    judge = release().spec.evaluation.judge
    assert (judge.rubric, judge.max_score, judge.timeout_seconds, judge.max_samples) == (FAITHFULNESS_RUBRIC, 10, 30, 20)


@pytest.mark.parametrize("judge, field", [
    ({**JUDGE, "rubric": ""}, "rubric"), ({**JUDGE, "timeoutSeconds": 301}, "timeoutSeconds"),
    ({**JUDGE, "maxSamples": 101}, "maxSamples"), ({**JUDGE, "maxScore": 0}, "maxScore"), ({"rubric": "r"}, "serviceRef"),
])
def test_the_judge_spec_is_bounded(judge, field):
    with pytest.raises(InvalidSpec, match=field):
        release(judge)


def test_the_judge_gate_needs_a_judge():
    with pytest.raises(InvalidSpec, match="minJudgeFaithfulness needs evaluation.judge"):
        release(judge=None, analysis={"minJudgeFaithfulness": 0.7})
    assert release(analysis={"minJudgeFaithfulness": 0.7}).spec.analysis.min_judge_faithfulness == 0.7


def test_the_judge_reads_the_request_the_retrieved_context_and_the_answer():
    parts = [("Request", variables_text({"question": "How do I roll back?"})),
             ("Retrieved context", "[1] (source: prompts.md)\nSet rollbackTo." + "x" * 10_000)]
    [system, user] = judge_messages(FAITHFULNESS_RUBRIC, parts, "Set rollbackTo.", 10)
    assert "0 to 10" in system["content"]
    assert user["content"].startswith(f"Rubric:\n{FAITHFULNESS_RUBRIC}\n\nRequest:\nquestion: How do I roll back?")
    assert "Retrieved context:\n[1] (source: prompts.md)" in user["content"]
    assert user["content"].endswith("Answer to score:\nSet rollbackTo.") and len(user["content"]) < 4_600


def test_an_unreadable_judgement_scores_zero_and_counts_as_an_error():
    assert mean_share([8, None, 10], 10) == (0.6, 1) and mean_share([], 10) == (0.0, 0)


def test_the_judge_gate_passes_fails_and_waits():
    analysis = AnalysisSpec(min_judge_faithfulness=0.7)
    phases = [evaluation_gates(analysis, EvaluationResult(version="v2", hash="h", judge_faithfulness=value))[0].phase
              for value in (0.8, 0.6, None)]
    assert phases == ["Successful", "Failed", "Inconclusive"]


def test_the_evaluation_waits_for_a_ready_judge():
    field = "spec.evaluation.judge.serviceRef"
    assert judge_readiness("judge", None, field)[1].reason == "InferenceServiceNotFound"
    pending = {"status": {"conditions": [{"type": "Ready", "status": "False"}]}}
    assert judge_readiness("judge", pending, field)[1].reason == "InferenceServiceNotReady"
    ready = {"status": {"url": "http://judge.ml", "conditions": [{"type": "Ready", "status": "True"}]}}
    assert judge_readiness("judge", ready, field)[0] == "http://judge.ml"
