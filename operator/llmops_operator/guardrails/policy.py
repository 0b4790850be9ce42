"""The compiled policy document ("llmops.dev/guardrail-policy/v1") as the runtime reads it.

`load_policy` validates a policy dict (from the ConfigMap's policy.json) and fills the defaults an older
compiler did not write (per-check mode from the policy's mode, onError failClosed). Every error names the
field it is about, such as `checks[2].threshold`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from llmops_operator.api.v1alpha1.guardrail import (
    CLASSIFIER_TYPES, DEFAULT_THRESHOLD, PII_ENTITIES, REDACTABLE_TYPES, CheckType,
)

CHECK_TYPES: tuple[str, ...] = CheckType.__args__
ACTIONS = ("block", "redact", "flag")
SCOPES = ("input", "output", "both")
MODES = ("enforce", "monitor")
ON_ERROR = ("failClosed", "failOpen")
DIRECTIONS = ("input", "output")

POLICY_FORMAT = "llmops.dev/guardrail-policy/v1"


class PolicyError(ValueError):
    """A policy document the runtime cannot load; the message starts with the offending field."""


@dataclass(frozen=True)
class CheckPolicy:
    name: str
    type: str
    action: str = "block"
    scope: str = "both"
    mode: str = "enforce"
    on_error: str = "failClosed"
    entities: tuple[str, ...] = ()
    threshold: float = DEFAULT_THRESHOLD
    topics: tuple[str, ...] = ()
    max_tokens: int | None = None
    patterns: tuple[str, ...] = ()

    def applies_to(self, direction: str) -> bool:
        return self.scope in (direction, "both")


@dataclass(frozen=True)
class Policy:
    mode: str
    checks: tuple[CheckPolicy, ...]


def _choice(raw: Mapping[str, Any], key: str, choices: tuple[str, ...], default: str, where: str) -> str:
    value = raw.get(key, default)
    if value not in choices:
        raise PolicyError(f"{where}.{key}: {value!r} is not one of {', '.join(choices)}")
    return value


def _strings(raw: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = raw.get(key)
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip() for v in value):
        raise PolicyError(f"{where}.{key}: expected a non-empty list of non-empty strings")
    return tuple(value)


def _check(raw: Any, index: int, policy_mode: str) -> CheckPolicy:
    where = f"checks[{index}]"
    if not isinstance(raw, Mapping):
        raise PolicyError(f"{where}: expected an object")
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise PolicyError(f"{where}.name: expected a non-empty string")
    type_ = _choice(raw, "type", CHECK_TYPES, "", where)
    fields: dict[str, Any] = {
        "action": _choice(raw, "action", ACTIONS, "block", where),
        "scope": _choice(raw, "scope", SCOPES, "both", where),
        "mode": _choice(raw, "mode", MODES, policy_mode, where),
        "on_error": _choice(raw, "onError", ON_ERROR, "failClosed", where),
    }
    if fields["action"] == "redact" and type_ not in REDACTABLE_TYPES:
        raise PolicyError(f"{where}.action: redact applies to {' and '.join(REDACTABLE_TYPES)} checks only")
    if type_ == "piiRedaction":
        entities = _strings(raw, "entities", where) if "entities" in raw else PII_ENTITIES
        unknown = sorted(set(entities) - set(PII_ENTITIES))
        if unknown:
            raise PolicyError(f"{where}.entities: unknown entities {unknown}; known: {', '.join(PII_ENTITIES)}")
        fields["entities"] = tuple(entities)
    elif type_ in CLASSIFIER_TYPES:
        threshold = raw.get("threshold", DEFAULT_THRESHOLD)
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 <= threshold <= 1:
            raise PolicyError(f"{where}.threshold: expected a number between 0 and 1, got {threshold!r}")
        fields["threshold"] = float(threshold)
    elif type_ == "topicDenylist":
        fields["topics"] = _strings(raw, "topics", where)
    elif type_ == "maxTokens":
        limit = raw.get("maxTokens")
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise PolicyError(f"{where}.maxTokens: expected a positive integer, got {limit!r}")
        fields["max_tokens"] = limit
    elif type_ == "regexDeny":
        patterns = _strings(raw, "patterns", where)
        for number, pattern in enumerate(patterns):
            try:
                re.compile(pattern)
            except re.error as err:
                raise PolicyError(f"{where}.patterns[{number}]: {pattern!r} does not compile: {err}") from None
        fields["patterns"] = patterns
    return CheckPolicy(name=name, type=type_, **fields)


def load_policy(document: Mapping[str, Any]) -> Policy:
    """A validated policy from its compiled document."""
    if not isinstance(document, Mapping):
        raise PolicyError("policy: expected a JSON object")
    if document.get("format") != POLICY_FORMAT:
        raise PolicyError(f"format: expected {POLICY_FORMAT!r}, got {document.get('format')!r}")
    mode = _choice(document, "mode", MODES, "enforce", "policy")
    raw_checks = document.get("checks")
    if not isinstance(raw_checks, list) or not raw_checks:
        raise PolicyError("checks: expected a non-empty list")
    checks = tuple(_check(raw, index, mode) for index, raw in enumerate(raw_checks))
    names = [c.name for c in checks]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate:
        raise PolicyError(f"checks: check name {duplicate!r} appears more than once")
    return Policy(mode=mode, checks=checks)


def read_policy_file(path: Path) -> Policy:
    """A policy from a policy.json file."""
    try:
        document = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise PolicyError(f"{path}: not JSON: {err}") from None
    return load_policy(document)
