"""Runs a prompt version's evaluation examples through the target service with the version forced.

Each example is one v1 predict request to the InferenceService's URL carrying the header
`x-llmops-prompt-version` (builders/prompts.FORCE_HEADER) and the routing's evaluation token
(`x-llmops-evaluation-token`), so the guardrail transformer renders that version even while it has weight 0
in the routing. The answer's `version` is checked: a service whose routing does
not (yet) hold the version answers with another one, and the evaluation is reported as not done rather
than scored on the wrong prompt.

The service is the tenant's: every answer is read in chunks up to MAX_RESPONSE_BYTES (a larger one is an
error, never buffered whole), every call has a time limit, and the text kept per output is cut at
KEPT_OUTPUT_CHARS. Scoring the outputs runs in a child process under a time limit (`score_outputs`).
"""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import dataclass
from typing import Any, Sequence

import aiohttp

from llmops_operator.api.v1alpha1.promptrelease_evaluation import EvaluationExample
from llmops_operator.guardrails.verdict import BLOCKED
from llmops_operator.scoring.prompt_evaluation import Output
from llmops_operator.builders.prompts import FORCE_HEADER, TOKEN_HEADER
from llmops_operator.k8s.capped import BodyTooLarge, read_capped

CALL_TIMEOUT_S = 60.0
MAX_RESPONSE_BYTES = 1024 * 1024
KEPT_OUTPUT_CHARS = 32 * 1024
MAX_CITATIONS = 20
ERROR_BODY_BYTES = 300
SCORING_TIMEOUT_S = 60.0
SCORING_MODULE = "llmops_operator.entrypoints.prompt_scoring"


class EvaluationUnavailable(RuntimeError):
    """The service could not answer for the forced version; the message says what happened."""

    reason = "ServiceUnavailable"


class ScoringFailed(RuntimeError):
    """The scoring process failed or ran past its time limit; the message says which."""

    reason = "ScoringFailed"


async def _error_text(response: aiohttp.ClientResponse) -> str:
    try:
        return (await response.content.read(ERROR_BODY_BYTES)).decode("utf-8", "replace")
    except (aiohttp.ClientError, asyncio.TimeoutError):
        return ""


@dataclass(frozen=True)
class Endpoint:
    url: str
    """Base URL of the InferenceService (its status.url)."""
    model: str
    """Model name in the v1 path (the KServe InferenceService's name)."""
    token: str | None = None
    """The routing's evaluation token, sent as TOKEN_HEADER: without it the runtime ignores FORCE_HEADER."""


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
    sources, context = retrieval_of(prediction.get("retrieval"))
    return Output(text=str(prediction.get("text") or "")[:KEPT_OUTPUT_CHARS], outcome=outcome, sources=sources,
                  context=context)


def retrieval_of(retrieval: Any) -> tuple[tuple[str, ...] | None, str | None]:
    """(cited ids and sources, the context given to the model) of a prediction's `retrieval` field, if any."""
    if not isinstance(retrieval, dict):
        return None, None
    citations = [c for c in retrieval.get("citations") or [] if isinstance(c, dict)][:MAX_CITATIONS]
    sources = tuple(str(c[key])[:KEPT_OUTPUT_CHARS] for c in citations for key in ("id", "source") if key in c)
    context = retrieval.get("context")
    return sources, str(context)[:KEPT_OUTPUT_CHARS] if isinstance(context, str) else None


async def _predict(http: aiohttp.ClientSession, endpoint: Endpoint, version: str, example: EvaluationExample,
                   index: int) -> Output:
    body = {"instances": [{"variables": dict(example.variables)}]}
    path = f"{endpoint.url.rstrip('/')}/v1/models/{endpoint.model}:predict"
    try:
        headers = {FORCE_HEADER: version, **({TOKEN_HEADER: endpoint.token} if endpoint.token else {})}
        async with http.post(path, json=body, headers=headers) as response:
            if response.status != 200:
                text = await _error_text(response)
                raise EvaluationUnavailable(f"examples[{index}]: POST {path}: HTTP {response.status}: {text}")
            answer = json.loads(await read_capped(response, MAX_RESPONSE_BYTES, "the answer"))
    except BodyTooLarge as err:
        raise EvaluationUnavailable(f"examples[{index}]: POST {path}: {err}") from None
    except asyncio.TimeoutError:
        raise EvaluationUnavailable(f"examples[{index}]: POST {path}: no answer within the call's time limit "
                                    f"({http.timeout.total:g}s)") from None
    except (aiohttp.ClientError, OSError, ValueError) as err:
        raise EvaluationUnavailable(f"examples[{index}]: POST {path}: {type(err).__name__}: {err}") from None
    predictions = answer.get("predictions") if isinstance(answer, dict) else None
    if not isinstance(predictions, list) or len(predictions) != 1:
        raise EvaluationUnavailable(f"examples[{index}]: the answer has no single prediction")
    return output_of(predictions[0], version, index)


async def run_examples(endpoint: Endpoint, version: str, examples: Sequence[EvaluationExample],
                       call_timeout_s: float = CALL_TIMEOUT_S) -> list[Output]:
    """Every example's output for `version`, one request at a time (evaluation must not load the service)."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=call_timeout_s)) as http:
        return [await _predict(http, endpoint, version, example, i) for i, example in enumerate(examples)]


async def score_outputs(request: dict[str, Any], timeout_s: float = SCORING_TIMEOUT_S) -> dict[str, Any]:
    """entrypoints/prompt_scoring.py's answer to `request`, computed in a child process killed after timeout_s."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", SCORING_MODULE, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(process.communicate(json.dumps(request).encode()), timeout_s)
    except asyncio.TimeoutError:
        process.kill()
        await process.wait()
        raise ScoringFailed(f"scoring the outputs took longer than {timeout_s:g}s and was stopped: check the "
                            "examples' regex patterns and the Guardrail's for catastrophic backtracking") from None
    if process.returncode != 0:
        tail = err.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
        raise ScoringFailed(f"scoring the outputs failed (exit {process.returncode}): {tail[0][:300]}")
    try:
        return json.loads(out)
    except ValueError as problem:
        raise ScoringFailed(f"the scoring process answered no JSON: {problem}") from None
