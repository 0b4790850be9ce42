"""A PromptRelease evaluation's LLM judge over HTTP: the judge InferenceService scores each answer's faithfulness
to the context retrieved for it (prompt and reply reading in scoring/judge.py).

The judge is the tenant's: every reply is read up to scoring/judge.MAX_REPLY_BYTES, every call is bounded by the
judge's timeoutSeconds, and at most maxSamples answers are judged, one call at a time. A judgement that fails,
times out or cannot be read scores 0 and counts in judgeErrors.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import aiohttp

from llmops_operator.k8s.capped import BodyTooLarge, read_capped
from llmops_operator.scoring.judge import (
    MAX_REPLY_BYTES, chat_request, judge_messages, mean_share, score_of, served_model,
)

CALL_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError, BodyTooLarge, OSError, ValueError)


@dataclass(frozen=True)
class Judged:
    faithfulness: float | None
    """Mean score as a share of maxScore (0..1); None when no answer had a context to be judged against."""
    errors: int


async def _json(http: aiohttp.ClientSession, method: str, url: str, body: Any = None) -> Any:
    async with http.request(method, url, json=body, allow_redirects=False) as response:
        if response.status != 200:
            raise ValueError(f"{method} {url}: HTTP {response.status}")
        return json.loads(await read_capped(response, MAX_REPLY_BYTES, "the judge's reply"))


def variables_text(variables: Mapping[str, str]) -> str:
    return "\n".join(f"{name}: {value}" for name, value in variables.items())


async def judge_faithfulness(url: str, judge: Any, cases: Sequence[tuple[Mapping[str, str], str | None, str]]
                             ) -> Judged:
    """Judge each (request variables, retrieved context, answer) case whose context is set, at most
    judge.max_samples of them (`judge`: api/v1alpha1 FaithfulnessJudge)."""
    judged = [case for case in cases if case[1]][: judge.max_samples]
    if not judged:
        return Judged(None, 0)
    base, top = url.rstrip("/"), judge.max_score
    scores: list[int | None] = []
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=judge.timeout_seconds)) as http:
        try:
            model = served_model(await _json(http, "GET", f"{base}/v1/models"), base)
        except CALL_ERRORS:
            return Judged(0.0, len(judged))
        for variables, context, answer in judged:
            parts = [("Request", variables_text(variables)), ("Retrieved context", context)]
            messages = judge_messages(judge.rubric, parts, answer, top)
            try:
                scores.append(score_of(await _json(http, "POST", f"{base}/v1/chat/completions",
                                                   chat_request(model, messages)), top))
            except CALL_ERRORS:
                scores.append(None)
    share, errors = mean_share(scores, top)
    return Judged(share, errors)
