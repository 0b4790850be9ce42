"""The OpenAI request fields the sandbox predictor honours, parsed; anything it cannot honour names the field."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MAX_PROMPT_CHARS = 1 << 20


SHOWN_LIMIT = 40
"""Characters of a rejected value an error message repeats (requests are the caller's data, not log material)."""


def shown(value: Any) -> str:
    """`value` as an error message quotes it, cut to SHOWN_LIMIT characters."""
    text = repr(value)
    return text if len(text) <= SHOWN_LIMIT else text[:SHOWN_LIMIT - 3] + "..."


class BadRequest(ValueError):
    """A completion request the server cannot serve; `param` names the field."""

    status = 400

    def __init__(self, param: str, message: str):
        super().__init__(f"{param}: {message}")
        self.param = param


class ModelNotFound(BadRequest):
    status = 404


@dataclass(frozen=True)
class Completion:
    prompt: str
    max_tokens: int = 16
    temperature: float = 1.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    stream: bool = False
    include_usage: bool = False
    messages: tuple[tuple[str, str], ...] | None = None
    """For a chat request: (role, content) pairs; the prompt is rendered from them with the chat template."""
    adapter: str | None = None
    """The LoRA adapter the request named in `model`; None for the base model."""


def _number(body: dict[str, Any], name: str, default: float, low: float, high: float) -> float:
    value = body.get(name, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise BadRequest(name, f"expected a number in [{low}, {high}], got {shown(value)}")
    return float(value)


def parse_messages(raw: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(raw, list) or not raw or len(raw) > 256 or not all(
            isinstance(m, dict) and m.get("role") in ("system", "user", "assistant")
            and isinstance(m.get("content"), str) for m in raw):
        raise BadRequest("messages", "expected a non-empty list of {role: system|user|assistant, content: string}")
    messages = tuple((m["role"], m["content"]) for m in raw)
    if sum(len(c) for _, c in messages) > MAX_PROMPT_CHARS:
        raise BadRequest("messages", f"longer than {MAX_PROMPT_CHARS} characters")
    return messages


def parse_completion(body: Any, model_name: str, chat: bool = False, adapters: tuple[str, ...] = ()) -> Completion:
    """The OpenAI completions (or chat completions) fields this server honours; anything else it cannot honour
    is a 400 (a `model` it does not serve: 404)."""
    if not isinstance(body, dict):
        raise BadRequest("body", "expected a JSON object")
    if body.get("model") not in (None, model_name, *adapters):
        raise ModelNotFound("model", f"this server serves {', '.join(map(repr, (model_name, *adapters)))}, not "
                                     f"{shown(body.get('model'))}")
    messages = parse_messages(body.get("messages")) if chat else None
    prompt = "" if chat else body.get("prompt")
    if not chat and (not isinstance(prompt, str) or not prompt):
        raise BadRequest("prompt", "expected a non-empty string")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise BadRequest("prompt", f"longer than {MAX_PROMPT_CHARS} characters")
    max_tokens = body.get("max_tokens", 16)
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise BadRequest("max_tokens", f"expected a positive integer, got {shown(max_tokens)}")
    stop = body.get("stop") or ()
    stop = (stop,) if isinstance(stop, str) else stop
    if not isinstance(stop, (list, tuple)) or not all(isinstance(s, str) and s for s in stop) or len(stop) > 4:
        raise BadRequest("stop", "expected a string or a list of up to 4 non-empty strings")
    stream, options = body.get("stream", False), body.get("stream_options") or {}
    if not isinstance(stream, bool) or not isinstance(options, dict):
        raise BadRequest("stream", "expected a boolean (and stream_options an object)")
    return Completion(prompt=prompt, max_tokens=max_tokens, temperature=_number(body, "temperature", 1.0, 0.0, 2.0),
                      top_p=_number(body, "top_p", 1.0, 0.0, 1.0), stop=tuple(stop), stream=stream,
                      include_usage=bool(options.get("include_usage")), messages=messages,
                      adapter=body["model"] if body.get("model") in adapters else None)


def truncate_at_stop(text: str, stop: tuple[str, ...]) -> tuple[str, bool]:
    """The text up to the first stop sequence, and whether one was found."""
    cuts = [text.find(s) for s in stop if s in text]
    return (text[:min(cuts)], True) if cuts else (text, False)
