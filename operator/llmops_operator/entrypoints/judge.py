"""LLM-as-judge: an InferenceService's OpenAI chat endpoint scores each generated answer against a rubric.

The judge is asked, at temperature 0 and with a few tokens to answer, for one integer from 0 to maxScore; the
first integer in its reply is the score when it lies in that range. A judgement that fails, times out, or cannot
be read scores 0 and is counted in judgeErrors, so a judge that is down fails a gate rather than passing it. Every
call is bounded by judge.timeoutSeconds, and at most judge.maxSamples answers are judged.
"""

from __future__ import annotations

import re
from typing import Any

MAX_FIELD_CHARS = 4000
"""Question, reference and answer are each cut to this many characters in the judge's prompt."""
MAX_REPLY_BYTES = 65_536
INSTRUCTION = ("You are a strict evaluator. Score the answer against the rubric with one integer from 0 to {top}, "
               "where {top} fully meets the rubric and 0 does not at all. Reply with the integer only.")


def judge_messages(rubric: str, question: str, reference: str | None, answer: str, top: int) -> list[dict[str, str]]:
    parts = [f"Rubric:\n{rubric}", f"Question:\n{question[:MAX_FIELD_CHARS]}"]
    if reference:
        parts.append(f"Reference answer:\n{reference[:MAX_FIELD_CHARS]}")
    parts.append(f"Answer to score:\n{answer[:MAX_FIELD_CHARS]}")
    return [{"role": "system", "content": INSTRUCTION.format(top=top)}, {"role": "user", "content": "\n\n".join(parts)}]


def parse_score(reply: str, top: int) -> int | None:
    """The first integer in the judge's reply when it is within 0..top, else None."""
    found = re.search(r"\d+", reply or "")
    if found is None or len(found.group()) > 3:
        return None
    value = int(found.group())
    return value if 0 <= value <= top else None


def _served_model(client: Any, url: str) -> str:
    models = client.get(f"{url}/v1/models").raise_for_status().json().get("data") or []
    if not models or not isinstance(models[0], dict) or not models[0].get("id"):
        raise ValueError(f"the judge at {url} lists no model on /v1/models")
    return str(models[0]["id"])


def _judgement(client: Any, url: str, model: str, messages: list[dict[str, str]], top: int) -> int | None:
    response = client.post(f"{url}/v1/chat/completions", json={
        "model": model, "messages": messages, "max_tokens": 8, "temperature": 0, "stream": False})
    if response.status_code != 200 or len(response.content) > MAX_REPLY_BYTES:
        return None
    choices = response.json().get("choices") or [{}]
    content = ((choices[0] or {}).get("message") or {}).get("content")
    return parse_score(content if isinstance(content, str) else "", top)


def judge_scores(judge: dict[str, Any], cases: list[tuple[str, str | None, str]]) -> dict[str, float]:
    """judge (mean score as a share of maxScore, 0..1) and judgeErrors over (question, reference, answer) cases."""
    import httpx

    if not judge.get("url"):
        raise ValueError("evaluation.judge: the judge InferenceService's URL was not resolved")
    url, top = judge["url"].rstrip("/"), judge.get("maxScore", 10)
    cases = cases[: judge.get("maxSamples", 20)]
    scores, errors = [], 0
    with httpx.Client(timeout=float(judge.get("timeoutSeconds", 30)), follow_redirects=False) as client:
        try:
            model = _served_model(client, url)
        except (httpx.HTTPError, ValueError):
            return {"judge": 0.0, "judgeErrors": float(len(cases))}
        for question, reference, answer in cases:
            try:
                score = _judgement(client, url, model, judge_messages(judge["rubric"], question, reference, answer,
                                                                      top), top)
            except (httpx.HTTPError, ValueError):
                score = None
            errors += score is None
            scores.append(score or 0)
    return {"judge": round(sum(scores) / (top * len(scores)), 4) if scores else 0.0, "judgeErrors": float(errors)}
