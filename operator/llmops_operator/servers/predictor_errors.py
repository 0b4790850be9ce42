"""What the client is told when the predictor fails: whose fault it is (the status) and the predictor's own
reason, bounded and never quoting the prompt."""

from __future__ import annotations

import logging
from typing import Any

import httpx
from fastapi.responses import JSONResponse
from kserve.errors import InferenceError

log = logging.getLogger("llmops.guardrails.transformer")


class PredictorError(InferenceError):
    """The predictor's answer cannot be served; `http_status` is the status the client gets."""

    def __init__(self, reason: str, http_status: int):
        super().__init__(reason)
        self.http_status = http_status


def client_status(predictor_status: int) -> int:
    """The client's status for a predictor's non-200 answer: its 4xx as is (the request is at fault), 503 while it
    is unavailable, 502 for anything else (the gateway got a bad answer)."""
    if 400 <= predictor_status < 500 or predictor_status == 503:
        return predictor_status
    return 502


REASON_LIMIT = 200
"""Characters of a predictor's error message that reach the client and the log."""
ECHO_WINDOW = 12
"""A message sharing this many consecutive characters with the prompt quotes it."""
WITHHELD = "(the predictor's message quoted the prompt and is withheld)"


def quotes(text: str, prompt: str) -> bool:
    """Whether `text` contains a run of ECHO_WINDOW characters of `prompt` (all of it, when shorter)."""
    if len(prompt) <= ECHO_WINDOW:
        return len(prompt.strip()) >= 4 and prompt in text
    runs = {text[i:i + ECHO_WINDOW] for i in range(len(text) - ECHO_WINDOW + 1)}
    return any(prompt[i:i + ECHO_WINDOW] in runs for i in range(len(prompt) - ECHO_WINDOW + 1))


def without_prompt(reason: str, prompt: str) -> str:
    """`reason` cut to REASON_LIMIT characters, or WITHHELD when it quotes the prompt: prompts never reach logs."""
    reason = reason[:REASON_LIMIT]
    return WITHHELD if prompt and quotes(reason, prompt) else reason


def predictor_reason(response: httpx.Response, prompt: str = "") -> str:
    """The readable part of a predictor's error body (an OpenAI-style error.message, a top-level message, error
    or detail string, else the start of the body), bounded and never quoting `prompt`."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        error = body.get("error")
        for reason in (error.get("message") if isinstance(error, dict) else error, body.get("message"),
                       body.get("detail")):
            if isinstance(reason, str) and reason:
                return without_prompt(reason, prompt)
    return without_prompt(response.text[:REASON_LIMIT] or response.reason_phrase, prompt)


def predictor_failure(response: httpx.Response, prompt: str = "") -> PredictorError:
    status = client_status(response.status_code)
    what = "refused the request" if status < 500 else "failed"
    return PredictorError(f"predictor {what} (HTTP {response.status_code}): {predictor_reason(response, prompt)}",
                          status)


def unreachable(err: httpx.HTTPError, base_url: Any, timeout: float) -> PredictorError:
    """503 when no connection could be made, 504 when the predictor did not answer in time, else 502."""
    if isinstance(err, (httpx.ConnectError, httpx.ConnectTimeout)):
        return PredictorError(f"predictor unreachable at {base_url}: {err!r}", 503)
    if isinstance(err, httpx.TimeoutException):
        return PredictorError(f"predictor at {base_url} did not answer within {timeout:g}s", 504)
    return PredictorError(f"predictor at {base_url} broke off: {err!r}", 502)


async def predictor_error_handler(_: Any, exc: PredictorError) -> JSONResponse:
    if exc.http_status >= 500:
        log.error("%s", exc)
    else:
        log.info("%s", exc)
    return JSONResponse(status_code=exc.http_status, content={"error": str(exc)})
