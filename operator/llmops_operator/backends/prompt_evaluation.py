"""Runs a prompt version's evaluation examples through the target service with the version forced.

Each example is one v1 predict request to the InferenceService's URL carrying the header
`x-llmops-prompt-version` (builders/prompts.FORCE_HEADER), so the guardrail transformer renders that version
even while it has weight 0 in the routing. The answer's `version` is checked: a service whose routing does
not (yet) hold the version answers with another one, and the evaluation is reported as not done rather
than scored on the wrong prompt.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Sequence

import aiohttp

from llmops_operator.api.v1alpha1.promptrelease_evaluation import EvaluationExample
from llmops_operator.guardrails.verdict import BLOCKED
from llmops_operator.scoring.prompt_evaluation import Output
from llmops_operator.builders.prompts import FORCE_HEADER

TIMEOUT = aiohttp.ClientTimeout(total=120)


class EvaluationUnavailable(RuntimeError):
    """The service could not answer for the forced version; the message says what happened."""


@dataclass(frozen=True)
class Endpoint:
    url: str
    """Base URL of the InferenceService (its status.url)."""
    model: str
    """Model name in the v1 path (the KServe InferenceService's name)."""


def output_of(prediction: Any, version: str, index: int) -> Output:
    """The output text and guardrail outcome of one prediction, as the transformer returns it."""
    if not isinstance(prediction, dict):
        raise EvaluationUnavailable(f"examples[{index}]: the service answered {type(prediction).__name__}, "
                                    "not a prediction object")
    if prediction.get("version") != version:
        raise EvaluationUnavailable(f"examples[{index}]: the service answered with version "
                                    f"{prediction.get('version')!r}, not {version!r} (not routed there yet)")
    if prediction.get("blocked"):
        return Output(text="", outcome=BLOCKED)
    verdicts = prediction.get("verdict") or {}
    outcomes = [(verdicts.get(d) or {}).get("outcome") for d in ("input", "output")]
    outcome = "redacted" if "redacted" in outcomes else "allowed"
    return Output(text=str(prediction.get("text") or ""), outcome=outcome)


async def _predict(http: aiohttp.ClientSession, endpoint: Endpoint, version: str, example: EvaluationExample,
                   index: int) -> Output:
    body = {"instances": [{"variables": dict(example.variables)}]}
    path = f"{endpoint.url.rstrip('/')}/v1/models/{endpoint.model}:predict"
    try:
        async with http.post(path, json=body, headers={FORCE_HEADER: version}) as response:
            if response.status != 200:
                text = (await response.text())[:300]
                raise EvaluationUnavailable(f"examples[{index}]: POST {path}: HTTP {response.status}: {text}")
            answer = await response.json(content_type=None)
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError) as err:
        raise EvaluationUnavailable(f"examples[{index}]: POST {path}: {type(err).__name__}: {err}") from None
    predictions = answer.get("predictions") if isinstance(answer, dict) else None
    if not isinstance(predictions, list) or len(predictions) != 1:
        raise EvaluationUnavailable(f"examples[{index}]: the answer has no single prediction")
    return output_of(predictions[0], version, index)


async def run_examples(endpoint: Endpoint, version: str, examples: Sequence[EvaluationExample]) -> list[Output]:
    """Every example's output for `version`, one request at a time (evaluation must not load the service)."""
    async with aiohttp.ClientSession(timeout=TIMEOUT) as http:
        return [await _predict(http, endpoint, version, example, i) for i, example in enumerate(examples)]
