"""The LLM judge's spec, its readiness, the reading of its replies and its gate (pure parts; the calls to a real
endpoint are in tests/integration/test_judge_scorer.py)."""

from __future__ import annotations

import pytest

from llmops_operator.api.v1alpha1 import FineTune
from llmops_operator.builders.runconfig import finetune_run_config
from llmops_operator.controllers.finetune import judge_endpoint
from llmops_operator.core.contract import InvalidSpec, parse
from llmops_operator.scoring.judge import judge_messages, parse_score
from llmops_operator.status.finetune import gated_evaluation

JUDGE = {"serviceRef": {"name": "judge"}, "rubric": "Correct and brief.", "threshold": 0.6}


def finetune(judge=JUDGE) -> FineTune:
    return parse(FineTune, {"apiVersion": "llmops.dev/v1alpha1", "kind": "FineTune",
                            "metadata": {"name": "ft", "namespace": "ml"},
                            "spec": {"dataset": {"uri": "pvc://d/t.jsonl"}, "baseModel": {"uri": "pvc://m/base"},
                                     "output": {"uri": "pvc://m/out"},
                                     "evaluation": {"dataset": {"uri": "pvc://d/e.jsonl"}, "judge": judge}}})


@pytest.mark.parametrize("judge, field", [
    ({**JUDGE, "rubric": ""}, "rubric"), ({**JUDGE, "rubric": "x" * 4001}, "rubric"),
    ({**JUDGE, "threshold": 2}, "threshold"), ({**JUDGE, "timeoutSeconds": 3600}, "timeoutSeconds"),
    ({**JUDGE, "maxSamples": 0}, "maxSamples"), ({"rubric": "r"}, "serviceRef"),
])
def test_the_judge_spec_is_bounded(judge, field):
    with pytest.raises(InvalidSpec, match=field):
        finetune(judge)


def test_the_finetune_waits_for_a_ready_judge_and_carries_its_url():
    ft = finetune()
    assert judge_endpoint(ft, {})[1].reason == "InferenceServiceNotFound"
    pending = {"status": {"conditions": [{"type": "Ready", "status": "False"}]}}
    assert judge_endpoint(ft, {("InferenceService", "judge"): pending})[1].reason == "InferenceServiceNotReady"
    ready = {"status": {"url": "http://judge.ml", "conditions": [{"type": "Ready", "status": "True"}]}}
    url, condition = judge_endpoint(ft, {("InferenceService", "judge"): ready})
    assert (url, condition.type, condition.status) == ("http://judge.ml", "JudgeReady", "True")
    config = finetune_run_config(ft, "file:///base", None, url)
    assert config["evaluation"]["judge"]["url"] == "http://judge.ml" and config["evaluation"]["judge"]["maxScore"] == 10


@pytest.mark.parametrize("reply, score", [("7", 7), ("Score: 10/10", 10), (" 0", 0), ("11", None), ("-", None),
                                          ("", None), ("1000000", None), ("seven", None)])
def test_only_an_integer_within_range_is_a_score(reply, score):
    assert parse_score(reply, 10) == score


def test_the_judge_prompt_is_bounded():
    [_, user] = judge_messages("r", [("Question", "q" * 10_000), ("Reference answer", None)], "a" * 10_000, 10)
    assert len(user["content"]) < 8_100 and "Reference answer" not in user["content"]


def test_the_threshold_gates_the_mean_judge_score():
    ft = finetune()
    failing = gated_evaluation(ft, {"data": {"progress.json": '{"evaluation": {"scores": {"judge": 0.5}}}'}})
    assert failing.gate == "Failed" and failing.gate_message == "judge score 0.5 is below 0.6"
    passing = gated_evaluation(ft, {"data": {"progress.json": '{"evaluation": {"scores": {"judge": 0.7}}}'}})
    assert passing.gate == "Passed" and "judge score" in passing.gate_message
    assert gated_evaluation(finetune({**JUDGE, "threshold": None}), {"data": {
        "progress.json": '{"evaluation": {"scores": {"judge": 0.1}}}'}}).gate == "Passed"
