"""The compiled guardrail policy and the content-hashed ConfigMap that carries it (pure)."""

from __future__ import annotations

import json
from typing import Any

from llmops_operator.api.v1alpha1.guardrail import (
    CLASSIFIER_TYPES, DEFAULT_THRESHOLD, PII_ENTITIES, Guardrail, GuardrailCheck, GuardrailSpec,
)
from llmops_operator.builders import labels
from llmops_operator.guardrails.policy import POLICY_FORMAT
from llmops_operator.builders.naming import owned_name, short_hash

POLICY_KEY = "policy.json"
"""The ConfigMap key holding the compiled policy."""
POLICY_COMPONENT = "guardrail-policy"


def compile_check(check: GuardrailCheck, policy_mode: str = "enforce") -> dict[str, Any]:
    """One check with every default made explicit, so the runtime needs no knowledge of the API's defaults."""
    compiled: dict[str, Any] = {"name": check.name, "type": check.type, "action": check.action, "scope": check.scope,
                                "mode": check.mode or policy_mode, "onError": check.on_error}
    if check.type == "piiRedaction":
        compiled["entities"] = list(check.entities or PII_ENTITIES)
    elif check.type in CLASSIFIER_TYPES:
        compiled["threshold"] = DEFAULT_THRESHOLD if check.threshold is None else check.threshold
    elif check.type == "topicDenylist":
        compiled["topics"] = list(check.topics)
    elif check.type == "maxTokens":
        compiled["maxTokens"] = check.max_tokens
    elif check.type == "regexDeny":
        compiled["patterns"] = list(check.patterns)
    return compiled


def compile_policy(spec: GuardrailSpec) -> dict[str, Any]:
    """The policy document the guardrail runtime loads."""
    policy: dict[str, Any] = {"format": POLICY_FORMAT, "mode": spec.mode,
                              "checks": [compile_check(c, spec.mode) for c in spec.checks]}
    if spec.evaluation:
        policy["evaluation"] = {"configMap": spec.evaluation.dataset.name, "key": spec.evaluation.dataset.key,
                                "minPassRate": spec.evaluation.min_pass_rate}
    return policy


def policy_json(spec: GuardrailSpec) -> str:
    """The policy as canonical JSON (sorted keys, compact): the same spec always hashes the same."""
    return json.dumps(compile_policy(spec), sort_keys=True, separators=(",", ":"))


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
