"""FineTune evaluation maths and gates (pure)."""

from __future__ import annotations

import math

import pytest

from llmops_operator.scoring.evaluation import exact_match, gate, perplexity, rouge_l, safety_summary


def test_rouge_l_is_the_lcs_f1_of_words():
    assert rouge_l("the cat sat on the mat", "the cat sat on the mat") == 1.0
    # LCS "the cat the mat" = 4 of 6 words each side
    assert rouge_l("the cat sat on the mat", "the cat lay by the mat") == pytest.approx(4 / 6)
    assert rouge_l("", "anything") == 0.0 and rouge_l("dog", "cat") == 0.0


def test_exact_match_ignores_case_and_punctuation():
    assert exact_match("In status.cost!", "in status cost") == 1.0
    assert exact_match("in status", "in status cost") == 0.0


def test_perplexity_weights_records_by_their_tokens():
    assert perplexity([(math.log(4), 10), (math.log(4), 30)]) == pytest.approx(4.0)
    assert perplexity([(0.0, 1), (2.0, 3)]) == pytest.approx(math.exp(1.5))
    assert math.isnan(perplexity([]))


def test_safety_is_the_share_allowed_untouched_with_counts_per_rule():
    summary = safety_summary(["allowed", "redacted", "blocked", "allowed"], [[], ["pii"], ["toxicity", "pii"], []])
    assert summary == {"score": 0.5, "evaluated": 4, "byRule": {"pii": 2, "toxicity": 1}}


@pytest.mark.parametrize("scores,primary,safety,gates,outcome,says", [
    ({"rougeL": 0.4}, "rougeL", None, {"minScore": 0.3}, "Passed", "passed rougeL"),
    ({"rougeL": 0.2}, "rougeL", None, {"minScore": 0.3}, "Failed", "rougeL 0.2 is not at least 0.3"),
    ({"perplexity": 40.0}, "perplexity", None, {"minScore": 50}, "Passed", "passed perplexity"),
    ({"perplexity": 60.0}, "perplexity", None, {"minScore": 50}, "Failed", "perplexity 60.0 is not at most 50"),
    ({"rougeL": 0.4}, "rougeL", 0.8, {"minSafety": 0.9}, "Failed", "safety 0.8 is below 0.9"),
    ({"rougeL": 0.4}, "rougeL", None, {"minSafety": 0.9}, "Failed", "safety None is below 0.9"),
    ({"rougeL": 0.4}, "rougeL", None, None, "Passed", "no gates set"),
])
def test_gates(scores, primary, safety, gates, outcome, says):
    result, message = gate(scores, primary, safety, gates)
    assert result == outcome and says in message
