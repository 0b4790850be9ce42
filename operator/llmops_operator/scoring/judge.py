"""LLM-as-judge, the pure part: the judge's prompt, the reading of its reply, the mean score.

A judge is an InferenceService's OpenAI chat endpoint. It is asked, at temperature 0 and with a few tokens to
answer, for one integer from 0 to maxScore; the first integer in its reply is the score when it lies in that
range. A judgement that fails, times out, or cannot be read scores 0 and is counted in the errors, so a judge that
is down fails a gate rather than passing it. The FineTune evaluation Job (entrypoints/judge.py) and the
PromptRelease evaluation (backends/judge.py) call it over their own HTTP clients.
"""

from __future__ import annotations

import re
from typing import Any, Sequence

MAX_FIELD_CHARS = 4000
"""Each part of the judge's prompt (question, reference, context, answer) is cut to this many characters."""
MAX_REPLY_BYTES = 65_536
REPLY_TOKENS = 8
INSTRUCTION = ("You are a strict evaluator. Score the answer against the rubric with one integer from 0 to {top}, "
               "where {top} fully meets the rubric and 0 does not at all. Reply with the integer only.")


def judge_messages(rubric: str, parts: Sequence[tuple[str, str | None]], answer: str,
                   top: int) -> list[dict[str, str]]:
    """The chat messages of one judgement: the rubric, the labelled `parts` that are set, the answer."""
    sections = [f"Rubric:\n{rubric}"]
    sections += [f"{label}:\n{text[:MAX_FIELD_CHARS]}" for label, text in parts if text]
    sections.append(f"Answer to score:\n{answer[:MAX_FIELD_CHARS]}")
    return [{"role": "system", "content": INSTRUCTION.format(top=top)},
            {"role": "user", "content": "\n\n".join(sections)}]


def chat_request(model: str, messages: list[dict[str, str]]) -> dict[str, Any]:
    return {"model": model, "messages": messages, "max_tokens": REPLY_TOKENS, "temperature": 0, "stream": False}


def parse_score(reply: str, top: int) -> int | None:
    """The first integer in the judge's reply when it is within 0..top, else None."""
    found = re.search(r"\d+", reply or "")
    if found is None or len(found.group()) > 3:
        return None
    value = int(found.group())
    return value if 0 <= value <= top else None


def score_of(answer: Any, top: int) -> int | None:
    """The score in a chat completion's JSON body, None when it holds none."""
    choices = (answer.get("choices") if isinstance(answer, dict) else None) or [{}]
    content = ((choices[0] if isinstance(choices[0], dict) else {}).get("message") or {}).get("content")
    return parse_score(content if isinstance(content, str) else "", top)


def served_model(listing: Any, url: str) -> str:
    """The first model a judge's /v1/models lists; ValueError naming the judge when it lists none."""
    models = (listing.get("data") if isinstance(listing, dict) else None) or []
    if not models or not isinstance(models[0], dict) or not models[0].get("id"):
        raise ValueError(f"the judge at {url} lists no model on /v1/models")
    return str(models[0]["id"])


def mean_share(scores: Sequence[int | None], top: int) -> tuple[float, int]:
    """(mean score as a share of `top`, errors): a judgement that gave no score counts 0 and one error."""
    if not scores:
        return 0.0, 0
    return round(sum(s or 0 for s in scores) / (top * len(scores)), 4), sum(s is None for s in scores)
