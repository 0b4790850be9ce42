"""The compiled policy document ("llmops.dev/guardrail-policy/v1") as the runtime reads it.

The document is the serialised `CompiledPolicy` of the API, and `load_policy` reads it back through that same
model: a policy the runtime accepts obeys exactly the rules of the spec (check types, fields per type, linear
patterns), and defaults an older compiler left out are resolved. Every error names its field, such as
`checks.2.threshold`.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Mapping

from pydantic import ValidationError

from llmops_operator.api.v1alpha1.guardrail import DIRECTIONS, POLICY_FORMAT, CompiledPolicy, GuardrailCheck
from llmops_operator.core.contract import describe_validation_error

__all__ = ["DIRECTIONS", "POLICY_FORMAT", "Policy", "PolicyError", "load_policy", "policy_from_text", "policy_version",
           "read_policy_file"]

Policy = CompiledPolicy
"""A loaded policy: `mode` and `checks` (each a resolved `GuardrailCheck`)."""
Check = GuardrailCheck


class PolicyError(ValueError):
    """A policy document the runtime cannot load; the message starts with the offending field."""


def load_policy(document: Mapping[str, Any]) -> Policy:
    """A validated policy from its compiled document."""
    if not isinstance(document, Mapping):
        raise PolicyError("policy: expected a JSON object")
    if document.get("format") != POLICY_FORMAT:
        raise PolicyError(f"format: expected {POLICY_FORMAT!r}, got {document.get('format')!r}")
    try:
        return CompiledPolicy.model_validate(document, by_alias=True, by_name=False)
    except ValidationError as err:
        raise PolicyError(describe_validation_error(err)) from None


def read_policy_file(path: Path) -> Policy:
    """A policy from a policy.json file."""
    return policy_from_text(path.read_text(), path)


def policy_from_text(text: str, path: Path) -> Policy:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as err:
        raise PolicyError(f"{path}: not JSON: {err}") from None
    return load_policy(document)


def policy_version(text: str) -> str:
    """The version of a compiled policy: the first 8 hex digits of its SHA-256, as the Guardrail's
    status.policyHash names it (the file is the canonical JSON that hash is taken of)."""
    return hashlib.sha256(text.encode()).hexdigest()[:8]
