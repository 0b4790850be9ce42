"""LLM-as-judge in the FineTune evaluation Job: an InferenceService's OpenAI chat endpoint scores each generated
answer against a rubric (prompt and reply reading in scoring/judge.py). Every call is bounded by
judge.timeoutSeconds, and at most judge.maxSamples answers are judged.
"""

from __future__ import annotations

from typing import Any

from llmops_operator.scoring.judge import (
    MAX_REPLY_BYTES, chat_request, judge_messages, mean_share, score_of, served_model,
)


def _judgement(client: Any, url: str, model: str, messages: list[dict[str, str]], top: int) -> int | None:
    response = client.post(f"{url}/v1/chat/completions", json=chat_request(model, messages))
    if response.status_code != 200 or len(response.content) > MAX_REPLY_BYTES:
        return None
    return score_of(response.json(), top)


def judge_scores(judge: dict[str, Any], cases: list[tuple[str, str | None, str]]) -> dict[str, float]:
    """judge (mean score as a share of maxScore, 0..1) and judgeErrors over (question, reference, answer) cases."""
    import httpx

    if not judge.get("url"):
        raise ValueError("evaluation.judge: the judge InferenceService's URL was not resolved")
    url, top = judge["url"].rstrip("/"), judge.get("maxScore", 10)
    cases = cases[: judge.get("maxSamples", 20)]
    scores: list[int | None] = []
    with httpx.Client(timeout=float(judge.get("timeoutSeconds", 30)), follow_redirects=False) as client:
        try:
            model = served_model(client.get(f"{url}/v1/models").raise_for_status().json(), url)
        except (httpx.HTTPError, ValueError):
            return {"judge": 0.0, "judgeErrors": float(len(cases))}
        for question, reference, answer in cases:
            parts = [("Question", question), ("Reference answer", reference)]
            try:
                scores.append(_judgement(client, url, model, judge_messages(judge["rubric"], parts, answer, top), top))
            except (httpx.HTTPError, ValueError):
                scores.append(None)
    share, errors = mean_share(scores, top)
    return {"judge": share, "judgeErrors": float(errors)}
