"""A PromptRelease evaluation's faithfulness judge against a real judge endpoint: the guardrail transformer's
OpenAI chat route in front of a scripted predictor. Only answers given a retrieved context are judged, each
against that context; what cannot be reached or read scores 0 and counts as an error."""

from __future__ import annotations

import asyncio
import time

import pytest

from model_servers import transformer, write_policy
from scripted_predictor import Script, ScriptedPredictor

from llmops_operator.api.v1alpha1.promptrelease_evaluation import FaithfulnessJudge
from llmops_operator.backends.judge import Judged, judge_faithfulness
from llmops_operator.scoring.judge import INSTRUCTION

pytestmark = pytest.mark.integration

CONTEXT = "[1] (source: prompts.md)\nSet spec.rollbackTo to the stable version to roll a prompt release back."
CASES = [({"question": "How do I roll back?"}, CONTEXT, "Set spec.rollbackTo to the stable version."),
         ({"question": "Hello"}, None, "Hi."),  # no context retrieved: nothing to judge against
         ({"question": "What is a canary?"}, CONTEXT, "A canary is a bird.")]


def judge(**fields) -> FaithfulnessJudge:
    return FaithfulnessJudge.model_validate({"serviceRef": {"name": "judge"}, "timeoutSeconds": 30, **fields})


def judged(serving_dir, reply: list[str], **fields) -> tuple[Judged, ScriptedPredictor]:
    with ScriptedPredictor({}, otherwise=Script(reply)) as server:
        env = {"LLMOPS_GUARDRAIL_POLICY": str(write_policy(serving_dir / "policy-rag-judge.json"))}
        with transformer(serving_dir, "rag-judge", server.port, env) as url:
            return asyncio.run(judge_faithfulness(url, judge(**fields), CASES)), server


def test_each_answer_with_a_context_is_judged_against_it(serving_dir):
    result, server = judged(serving_dir, ["Score: ", "7"])
    assert result == Judged(0.7, 0) and len(server.seen) == 2
    system, user = server.seen[0]
    assert system == {"role": "system", "content": INSTRUCTION.format(top=10)}
    assert "Request:\nquestion: How do I roll back?" in user["content"]
    assert f"Retrieved context:\n{CONTEXT}" in user["content"]
    assert user["content"].endswith("Answer to score:\nSet spec.rollbackTo to the stable version.")
    assert server.seen[1][1]["content"].endswith("A canary is a bird.")


def test_an_unreadable_reply_scores_zero_and_max_samples_bounds_the_calls(serving_dir):
    assert judged(serving_dir, ["excellent"])[0] == Judged(0.0, 2)
    result, server = judged(serving_dir, ["9"], maxSamples=1)
    assert result == Judged(0.9, 0) and len(server.seen) == 1


def test_a_judge_that_is_not_there_fails_every_judgement_within_the_timeout():
    started = time.monotonic()
    result = asyncio.run(judge_faithfulness("http://127.0.0.1:9", judge(timeoutSeconds=2), CASES))
    assert result == Judged(0.0, 2) and time.monotonic() - started < 10


def test_without_any_context_nothing_is_judged():
    assert asyncio.run(judge_faithfulness("http://127.0.0.1:9", judge(), [CASES[1]])) == Judged(None, 0)
