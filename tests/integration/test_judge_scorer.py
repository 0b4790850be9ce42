"""The LLM-as-judge scorer against a real judge endpoint: the guardrail transformer's OpenAI chat route in front of
a scripted predictor that answers every judgement with a fixed text. The scorer reads the served model's name,
asks for an integer per answer, normalises the mean, and counts what it could not read or reach as errors."""

from __future__ import annotations

import pytest

from model_servers import transformer, write_policy
from scripted_predictor import Script, ScriptedPredictor

from llmops_operator.entrypoints.judge import judge_scores
from llmops_operator.scoring.judge import INSTRUCTION

pytestmark = pytest.mark.integration

CASES = [("What does a FineTune create?", "A RayJob.", "It creates a RayJob."),
         ("What is a gate?", None, "A threshold on the evaluation.")]


def judged(serving_dir, reply: list[str], **judge) -> tuple[dict, ScriptedPredictor]:
    with ScriptedPredictor({}, otherwise=Script(reply)) as server:
        env = {"LLMOPS_GUARDRAIL_POLICY": str(write_policy(serving_dir / "policy-judge.json"))}
        with transformer(serving_dir, "judge", server.port, env) as url:
            spec = {"url": url, "rubric": "Correct and polite.", "maxScore": 10, "timeoutSeconds": 30, **judge}
            return judge_scores(spec, CASES), server


def test_the_judge_scores_every_answer_against_the_rubric(serving_dir):
    scores, server = judged(serving_dir, ["Score: ", "7"])
    assert scores == {"judge": 0.7, "judgeErrors": 0.0}
    system, user = server.seen[0]
    assert system == {"role": "system", "content": INSTRUCTION.format(top=10)}
    assert user["content"].startswith("Rubric:\nCorrect and polite.\n\nQuestion:\nWhat does a FineTune create?")
    assert "Reference answer:\nA RayJob." in user["content"] and user["content"].endswith("It creates a RayJob.")
    assert "Reference answer" not in server.seen[1][1]["content"] and len(server.seen) == 2


def test_a_reply_out_of_range_or_unreadable_scores_zero_and_counts_as_an_error(serving_dir):
    assert judged(serving_dir, ["42"])[0] == {"judge": 0.0, "judgeErrors": 2.0}
    assert judged(serving_dir, ["excellent"])[0] == {"judge": 0.0, "judgeErrors": 2.0}
    assert judged(serving_dir, ["4"], maxSamples=1)[0] == {"judge": 0.4, "judgeErrors": 0.0}


def test_a_judge_that_is_not_there_fails_every_judgement_within_the_timeout():
    import time

    started = time.monotonic()
    scores = judge_scores({"url": "http://127.0.0.1:9", "rubric": "r", "timeoutSeconds": 2}, CASES)
    assert scores == {"judge": 0.0, "judgeErrors": 2.0} and time.monotonic() - started < 10
