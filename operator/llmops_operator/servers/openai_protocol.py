"""The OpenAI-compatible request and response shapes of the guardrail runtime (pure).

Requests: `POST /v1/chat/completions` {model, messages[{role, content}], stream, stream_options.include_usage,
max_tokens | max_completion_tokens, temperature, top_p, stop, n=1} and `POST /v1/completions` {model, prompt, ...
the same parameters}. With a prompt release attached, `variables` (an object; the openai client sends it with
`extra_body`) fills the release's template. Fields the runtime cannot honour (n > 1, tools) are refused with
the field named; other OpenAI fields are ignored. Responses and stream chunks follow OpenAI's shapes, errors
are `{"error": {message, type, param, code}}`.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Mapping

CHAT, COMPLETIONS = "chat.completion", "text_completion"
ROLES = ("system", "user", "assistant")
MAX_MESSAGES = 64
MAX_STOP = 4
REFUSED_FIELDS = ("tools", "functions", "tool_choice", "function_call", "logprobs", "top_logprobs", "suffix", "echo",
                  "best_of")
BLOCKED_MESSAGE = "The request was refused by this service's content policy."
OUTPUT_BLOCKED_MESSAGE = "The response was stopped by this service's content policy."
CONTENT_POLICY = "content_policy_violation"


class OpenAIError(ValueError):
    """A request the runtime refuses; `param` names the field, `status` is the HTTP status."""

    def __init__(self, message: str, param: str | None = None, status: int = 400,
                 kind: str = "invalid_request_error", code: str | None = None):
        super().__init__(message)
        self.param, self.status, self.kind, self.code = param, status, kind, code

    def body(self) -> dict[str, Any]:
        return error_body(str(self), self.kind, self.param, self.code)


def error_body(message: str, kind: str, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


@dataclass(frozen=True)
class Message:
    role: str
    content: str


@dataclass(frozen=True)
class OpenAIRequest:
    kind: str
    model: str
    messages: tuple[Message, ...] = ()
    prompt: str | None = None
    variables: Mapping[str, Any] | None = None
    parameters: Mapping[str, Any] = field(default_factory=dict)
    """In the runtime's own names (maxTokens, temperature, topP, stop), merged over the prompt version's."""
    stream: bool = False
    include_usage: bool = False


def _number(body: Mapping[str, Any], name: str, low: float, high: float) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise OpenAIError(f"{name}: expected a number in [{low:g}, {high:g}], got {value!r}", name)
    return float(value)


def _parameters(body: Mapping[str, Any]) -> dict[str, Any]:
    parameters: dict[str, Any] = {}
    for name in ("max_completion_tokens", "max_tokens"):
        value = body.get(name)
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise OpenAIError(f"{name}: expected a positive integer, got {value!r}", name)
            parameters["maxTokens"] = value
    for name, ours, high in (("temperature", "temperature", 2.0), ("top_p", "topP", 1.0)):
        value = _number(body, name, 0.0, high)
        if value is not None:
            parameters[ours] = value
    stop = body.get("stop")
    if stop is not None:
        stop = [stop] if isinstance(stop, str) else stop
        if not isinstance(stop, list) or len(stop) > MAX_STOP or not all(isinstance(s, str) and s for s in stop):
            raise OpenAIError(f"stop: expected a string or up to {MAX_STOP} non-empty strings", "stop")
        parameters["stop"] = stop
    return parameters


def _messages(raw: Any) -> tuple[Message, ...]:
    if not isinstance(raw, list) or not raw:
        raise OpenAIError("messages: expected a non-empty list", "messages")
    if len(raw) > MAX_MESSAGES:
        raise OpenAIError(f"messages: at most {MAX_MESSAGES}, got {len(raw)}", "messages")
    out = []
    for index, message in enumerate(raw):
        where = f"messages[{index}]"
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            raise OpenAIError(f"{where}.role: expected one of {', '.join(ROLES)}", f"{where}.role")
        content = message.get("content")
        if isinstance(content, list):  # content parts: only text parts are served
            if not all(isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str)
                       for p in content):
                raise OpenAIError(f"{where}.content: only text parts are served", f"{where}.content")
            content = "".join(p["text"] for p in content)
        if not isinstance(content, str):
            raise OpenAIError(f"{where}.content: expected a string", f"{where}.content")
        out.append(Message(message["role"], content))
    return tuple(out)


def _common(body: Any) -> tuple[str, dict[str, Any], bool, bool, Mapping[str, Any] | None]:
    if not isinstance(body, dict):
        raise OpenAIError("body: expected a JSON object", "body")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise OpenAIError("model: expected the served model's name", "model")
    refused = next((name for name in REFUSED_FIELDS if body.get(name) not in (None, False, [])), None)
    if refused:
        raise OpenAIError(f"{refused}: not served by this service", refused)
    if body.get("n") not in (None, 1):
        raise OpenAIError("n: only one choice is served per request", "n")
    stream = body.get("stream") or False
    options = body.get("stream_options") or {}
    if not isinstance(stream, bool) or not isinstance(options, dict):
        raise OpenAIError("stream: expected a boolean, stream_options an object", "stream")
    variables = body.get("variables")
    if variables is not None and not isinstance(variables, dict):
        raise OpenAIError("variables: expected an object", "variables")
    return model, _parameters(body), stream, bool(options.get("include_usage")), variables


def parse_chat(body: Any) -> OpenAIRequest:
    model, parameters, stream, include_usage, variables = _common(body)
    raw = body.get("messages")
    # With variables the prompt release renders the conversation; the client's messages follow it.
    messages = () if variables is not None and raw in (None, []) else _messages(raw)
    return OpenAIRequest(CHAT, model, messages=messages, variables=variables, parameters=parameters,
                         stream=stream, include_usage=include_usage)


def parse_completion(body: Any) -> OpenAIRequest:
    model, parameters, stream, include_usage, variables = _common(body)
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1:
        prompt = prompt[0]
    if prompt is not None and (not isinstance(prompt, str) or not prompt):
        raise OpenAIError("prompt: expected a non-empty string (one prompt per request)", "prompt")
    if prompt is None and variables is None:
        raise OpenAIError("prompt: required", "prompt")
    return OpenAIRequest(COMPLETIONS, model, prompt=prompt, variables=variables, parameters=parameters,
                         stream=stream, include_usage=include_usage)


def usage_body(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


def new_id(kind: str) -> str:
    return f"{'chatcmpl' if kind == CHAT else 'cmpl'}-{uuid.uuid4().hex}"


EXTENSION = "llmops"
"""The response field that carries what this runtime adds to OpenAI's shape (the chunks a retrieval used)."""


def response(kind: str, ident: str, model: str, text: str, finish: str | None, usage: dict[str, int],
             version: str, extension: dict[str, Any] | None = None) -> dict[str, Any]:
    choice: dict[str, Any] = {"index": 0, "finish_reason": finish, "logprobs": None}
    if kind == CHAT:
        choice["message"] = {"role": "assistant", "content": text}
    else:
        choice["text"] = text
    body = {"id": ident, "object": kind, "created": int(time.time()), "model": model, "choices": [choice],
            "usage": usage, "system_fingerprint": f"prompt-{version}"}
    return {**body, EXTENSION: extension} if extension else body


def chunk(kind: str, ident: str, model: str, text: str | None, finish: str | None = None,
          usage: dict[str, int] | None = None, extension: dict[str, Any] | None = None) -> str:
    """One server-sent event of a stream; a usage-only chunk (text None, usage given) has no choices; the final
    chunk (with finish) carries the extension field, when there is one."""
    body: dict[str, Any] = {"id": ident, "object": f"{kind}.chunk" if kind == CHAT else kind,
                            "created": int(time.time()), "model": model}
    if text is None and usage is not None:
        body["choices"], body["usage"] = [], usage
    else:
        choice: dict[str, Any] = {"index": 0, "finish_reason": finish, "logprobs": None}
        if kind == CHAT:
            choice["delta"] = {"role": "assistant", "content": text} if text is not None else {}
        else:
            choice["text"] = text or ""
        body["choices"] = [choice]
    if extension:
        body[EXTENSION] = extension
    return sse(body)


def sse(body: Any) -> str:
    return f"data: {json.dumps(body, separators=(',', ':'))}\n\n"


DONE = "data: [DONE]\n\n"


def upstream_event(line: str) -> dict[str, Any] | None:
    """A predictor's stream line as a dict; None for blank lines, comments and [DONE]."""
    if not line.startswith("data:"):
        return None
    data = line[5:].strip()
    if not data or data == "[DONE]":
        return None
    try:
        event = json.loads(data)
    except json.JSONDecodeError as err:
        raise ValueError(f"the predictor's stream has an unreadable event: {err}") from None
    if not isinstance(event, dict):
        raise ValueError("the predictor's stream has an event that is not an object")
    return event


def event_text(event: Mapping[str, Any]) -> tuple[str, str | None]:
    """(text, finish reason) of a completions or chat chunk; ('', None) for a usage-only chunk."""
    choices = event.get("choices") or []
    if not choices:
        return "", None
    choice = choices[0]
    text = choice.get("text")
    if text is None:
        text = (choice.get("delta") or {}).get("content")
    return (text if isinstance(text, str) else ""), choice.get("finish_reason")
