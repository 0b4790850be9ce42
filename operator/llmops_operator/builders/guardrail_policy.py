"""The compiled guardrail policy and the content-hashed ConfigMap that carries it (pure)."""

from __future__ import annotations

import json
from typing import Any

from llmops_operator.api.v1alpha1.guardrail import CompiledPolicy, Guardrail, GuardrailSpec
from llmops_operator.builders import labels
from llmops_operator.builders.naming import owned_name, short_hash

POLICY_KEY = "policy.json"
"""The ConfigMap key holding the compiled policy."""
POLICY_COMPONENT = "guardrail-policy"


def compile_policy(spec: GuardrailSpec) -> dict[str, Any]:
    """The policy document the guardrail runtime loads: the spec's checks with every default made explicit, so
    the runtime needs no knowledge of the API's defaults. It loads it back through the same model."""
    return CompiledPolicy.of(spec).wire()


COMPILED_KEPT = 256
_compiled: dict[str, str] = {}


def policy_json(spec: GuardrailSpec) -> str:
    """The policy as canonical JSON (sorted keys, compact): the same spec always hashes the same.

    Remembered by the spec's own JSON: a pass asks for it about eight times (name, hash, data, self-test, status),
    and dumping the spec costs a tenth of compiling it."""
    key = spec.model_dump_json()
    compiled = _compiled.get(key)
    if compiled is None:
        if len(_compiled) >= COMPILED_KEPT:
            _compiled.clear()
        compiled = _compiled[key] = json.dumps(compile_policy(spec), sort_keys=True, separators=(",", ":"))
    return compiled


def policy_hash(spec: GuardrailSpec) -> str:
    return short_hash(policy_json(spec))


def policy_configmap_name(guardrail: Guardrail) -> str:
    return owned_name(guardrail, "policy", policy_hash(guardrail.spec))


def build_policy_configmap(guardrail: Guardrail) -> dict[str, Any]:
    """An immutable ConfigMap named after its content: a changed policy is a new ConfigMap, so consumers roll."""
    digest = policy_hash(guardrail.spec)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": policy_configmap_name(guardrail),
            "namespace": guardrail.namespace,
            "labels": {**labels.child_labels(guardrail, POLICY_COMPONENT), labels.CONTENT_HASH: digest},
        },
        "immutable": True,
        "data": {POLICY_KEY: policy_json(guardrail.spec)},
    }
