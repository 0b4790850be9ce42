"""The guardrail runtime's request and response shapes on KServe's v1 protocol (pure).

Request: `{"instances": [{"prompt": "..."} | {"variables": {...}}, ...]}`, each instance optionally with
`parameters` ({maxTokens, temperature, topP, stop}) that override the prompt version's. With a prompt release
mounted, instances give `variables` for the release's template; without one, they give the `prompt` itself.
Response: `{"predictions": [...]}`, one per instance:
  served:  {"blocked": false, "text", "version", "verdict": {"input", "output"}, "usage"}
  blocked: {"blocked": true, "version", "verdict": {"input"[, "output"]}[, "usage"]}
A verdict never repeats the text it flagged (spans and rule names only); it is null for a direction no
policy checks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

MAX_INSTANCES = 64
PARAMETERS = {"maxTokens": int, "temperature": (int, float), "topP": (int, float), "stop": list}
DEFAULT_PARAMETERS = {"maxTokens": 128, "temperature": 1.0}
"""Sent when neither the prompt version nor the request says otherwise."""


class RequestError(ValueError):
    """A malformed request; the message names the field (instances[i].x)."""


@dataclass(frozen=True)
class Instance:
    prompt: str | None = None
    variables: Mapping[str, Any] | None = None
    parameters: Mapping[str, Any] = field(default_factory=dict)


def _parameters(raw: Any, where: str) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise RequestError(f"{where}: expected an object")
    for name, value in raw.items():
        kind = PARAMETERS.get(name)
        if kind is None:
            raise RequestError(f"{where}.{name}: unknown parameter (known: {', '.join(PARAMETERS)})")
        if not isinstance(value, kind) or isinstance(value, bool):
            raise RequestError(f"{where}.{name}: expected {'a list of strings' if kind is list else 'a number'}")
        if name == "stop" and not all(isinstance(s, str) for s in value):
            raise RequestError(f"{where}.stop: expected a list of strings")
        if name == "maxTokens" and value < 1:
            raise RequestError(f"{where}.maxTokens: expected a positive integer")
    return dict(raw)


def parse_instance(raw: Any, index: int, templated: bool) -> Instance:
    where = f"instances[{index}]"
    if not isinstance(raw, dict):
        raise RequestError(f"{where}: expected an object with 'prompt' or 'variables'")
    unknown = sorted(set(raw) - {"prompt", "variables", "parameters"})
    if unknown:
        raise RequestError(f"{where}: unknown field {unknown[0]!r} (expected prompt or variables, and parameters)")
    parameters = _parameters(raw.get("parameters"), f"{where}.parameters")
    if templated:
        if "prompt" in raw:
            raise RequestError(f"{where}.prompt: this service renders its prompt release; send 'variables' instead")
        variables = raw.get("variables", {})
        if not isinstance(variables, dict):
            raise RequestError(f"{where}.variables: expected an object")
        return Instance(variables=variables, parameters=parameters)
    if "variables" in raw:
        raise RequestError(f"{where}.variables: no prompt release is attached to this service; send 'prompt'")
    prompt = raw.get("prompt")
    if not isinstance(prompt, str) or not prompt:
        raise RequestError(f"{where}.prompt: expected a non-empty string")
    return Instance(prompt=prompt, parameters=parameters)


def parse_request(body: Any, templated: bool) -> list[Instance]:
    if not isinstance(body, dict):
        raise RequestError("body: expected a JSON object with 'instances'")
    instances = body.get("instances")
    if not isinstance(instances, list) or not instances:
        raise RequestError("instances: expected a non-empty list")
    if len(instances) > MAX_INSTANCES:
        raise RequestError(f"instances: at most {MAX_INSTANCES} per request, got {len(instances)}")
    return [parse_instance(raw, i, templated) for i, raw in enumerate(instances)]


def completion_request(model: str, prompt: str, *parameter_sets: Mapping[str, Any]) -> dict[str, Any]:
    """The OpenAI completions body for the predictor; later parameter sets override earlier ones."""
    merged: dict[str, Any] = dict(DEFAULT_PARAMETERS)
    for parameters in parameter_sets:
        merged.update(parameters)
    body = {"model": model, "prompt": prompt, "max_tokens": merged["maxTokens"], "temperature": merged["temperature"]}
    if merged.get("topP") is not None:
        body["top_p"] = merged["topP"]
    if merged.get("stop"):
        body["stop"] = list(merged["stop"])
    return body


def completion_result(response: Any) -> tuple[str, dict[str, int]]:
    """(text, usage) from the predictor's OpenAI completions response."""
    try:
        text = response["choices"][0]["text"]
        usage = response.get("usage") or {}
        counts = {"promptTokens": int(usage.get("prompt_tokens", 0)),
                  "completionTokens": int(usage.get("completion_tokens", 0))}
    except (KeyError, IndexError, TypeError, ValueError) as err:
        raise ValueError(f"the predictor's completion has no choices[0].text: {err!r}") from None
    if not isinstance(text, str):
        raise ValueError("the predictor's completion: choices[0].text is not a string")
    return text, counts


MAX_HITS_SHOWN = 100
"""A full verdict lists at most this many hits (and says how many there were)."""


def verdict_summary(verdict: Any, detail: str | None = None) -> dict[str, Any] | None:
    """A verdict as the response carries it: the outcome only, unless the policy asks for full detail (rules,
    entities, spans, capped at MAX_HITS_SHOWN); never the (redacted) text."""
    if verdict is None:
        return None
    if detail != "full":
        return {"outcome": verdict.outcome}
    summary = verdict.summarized(MAX_HITS_SHOWN).to_dict()
    summary.pop("text", None)
    return summary


def blocked_prediction(version: str, input_verdict: Any, output_verdict: Any = None,
                       usage: dict[str, int] | None = None, detail: str | None = None,
                       request_id: str | None = None) -> dict[str, Any]:
    verdicts = {"input": verdict_summary(input_verdict, detail)}
    if output_verdict is not None:
        verdicts["output"] = verdict_summary(output_verdict, detail)
    prediction: dict[str, Any] = {"blocked": True, "version": version, "verdict": verdicts}
    if usage is not None:
        prediction["usage"] = usage
    if request_id:
        prediction["requestId"] = request_id
    return prediction


def served_prediction(text: str, version: str, input_verdict: Any, output_verdict: Any, usage: dict[str, int],
                      detail: str | None = None, request_id: str | None = None) -> dict[str, Any]:
    prediction = {"blocked": False, "text": text, "version": version,
                  "verdict": {"input": verdict_summary(input_verdict, detail),
                              "output": verdict_summary(output_verdict, detail)},
                  "usage": usage}
    if request_id:
        prediction["requestId"] = request_id
    return prediction


