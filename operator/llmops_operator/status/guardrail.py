"""Status of a Guardrail, reduced from its compiled policy ConfigMap (pure).

Conditions (each reported on every pass):
- PolicyCompiled: set by the Guardrail controller. True once the policy ConfigMap named in
  status.policyConfigMap exists with the compiled policy; False when the API server did not return it.
  Counts toward Ready.
- Ready: True when PolicyCompiled is True: consumers (InferenceService, FineTune evaluation) may mount
  the policy. A spec the operator cannot compile (a regex that does not compile, a threshold out of
  range) never gets here: the glue reports Ready=False, reason InvalidSpec.

status.safety stays unscored (score empty, evaluated 0) until the guardrail runtime reports verdicts.
"""

from __future__ import annotations

from typing import Any

from llmops_operator.api.v1alpha1.common import SafetyStatus
from llmops_operator.api.v1alpha1.guardrail import Guardrail
from llmops_operator.builders.guardrail_policy import POLICY_KEY, policy_configmap_name, policy_hash
from llmops_operator.controllers.base import Observation
from llmops_operator.status import conditions as cond

POLICY_COMPILED = "PolicyCompiled"


def policy_compiled(guardrail: Guardrail, config_map: dict[str, Any] | None) -> cond.Observed:
    name = policy_configmap_name(guardrail)
    if config_map is None or POLICY_KEY not in (config_map.get("data") or {}):
        return cond.false(POLICY_COMPILED, "PolicyConfigMapMissing", f"ConfigMap {name!r} has no {POLICY_KEY} yet")
    checks = len(guardrail.spec.checks)
    return cond.true(POLICY_COMPILED, "Compiled", f"{checks} checks in ConfigMap {name!r} ({guardrail.spec.mode} mode)")


def guardrail_observation(guardrail: Guardrail, live: list[dict[str, Any]]) -> Observation:
    compiled = policy_compiled(guardrail, live[0] if live else None)
    ready = cond.aggregate_ready([compiled], [POLICY_COMPILED], "PolicyCompiled", compiled.message)
    fields: dict[str, Any] = {"checks": len(guardrail.spec.checks), "safety": SafetyStatus().wire()}
    if compiled.status == "True":
        fields |= {"policyConfigMap": policy_configmap_name(guardrail), "policyHash": policy_hash(guardrail.spec)}
    return Observation(conditions=[compiled, ready], phase="Ready" if ready.status == "True" else "Pending",
                       fields=fields)


def projected_guardrail_status(guardrail: Guardrail) -> dict[str, Any]:
    """The status a compiled Guardrail reports, for offline previews (`llmops render`)."""
    return {"phase": "Ready", "conditions": [{"type": cond.READY, "status": "True", "reason": "PolicyCompiled"}],
            "policyConfigMap": policy_configmap_name(guardrail), "policyHash": policy_hash(guardrail.spec),
            "checks": len(guardrail.spec.checks), "safety": SafetyStatus().wire()}
