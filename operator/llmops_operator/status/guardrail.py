"""Status of a Guardrail, reduced from its compiled policy ConfigMap and its self-test (pure).

Conditions (each reported on every pass):
- PolicyCompiled: set by the Guardrail controller. True once the policy ConfigMap named in
  status.policyConfigMap exists with the compiled policy; False when the API server did not return it.
  Counts toward Ready.
- Ready: True when PolicyCompiled is True: consumers (InferenceService, FineTune evaluation) may mount
  the policy. A spec the operator cannot compile (a pattern RE2 cannot run, a threshold out of range) never
  gets here: the glue reports Ready=False, reason InvalidSpec.
- SelfTested: set by the Guardrail controller from the built-in self-test of the compiled policy, which runs in
  a bounded worker, once per policy hash (status.selfTest keeps the result, so an unchanged policy is never
  tested again, not even after a restart). True, reason Passed, when the checks catch at least 90% of the
  built-in attacks they cover and hit at most 5% of the benign look-alikes; False, reason LowDetectionRate or
  HighFalsePositiveRate, with the numbers; Unknown, reason Running, while the worker has not finished within
  the pass's time budget, or SelfTestFailed with the error. Informational: does not count toward Ready.

status.safety carries the self-test's detectionRate and falsePositiveRate; its score stays empty (evaluated 0)
until the guardrail runtime reports live verdicts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llmops_operator.api.v1alpha1.common import SafetyStatus
from llmops_operator.api.v1alpha1.guardrail import Guardrail, GuardrailSelfTest
from llmops_operator.builders.guardrail_policy import (
    POLICY_COMPONENT, POLICY_KEY, policy_configmap_name, policy_hash, policy_json,
)
from llmops_operator.builders.labels import child_in_role
from llmops_operator.core import conditions as cond
from llmops_operator.core.contract import Observation
from llmops_operator.guardrails.selftest import MAX_FALSE_POSITIVE_RATE, MIN_DETECTION_RATE, selftest_policy_json

POLICY_COMPILED = "PolicyCompiled"
SELF_TESTED = "SelfTested"


@dataclass(frozen=True)
class SelfTestPending:
    """The self-test has no result for this pass: still running (`running`) or it failed (`error`)."""

    running: bool
    message: str


def self_test_summary(report: GuardrailSelfTest) -> str:
    detection = f"{report.detected}/{report.attacks} covered attacks caught" if report.attacks else "no attacks covered"
    summary = f"{detection}, {report.false_positives}/{report.benign} benign texts hit"
    if report.uncovered:
        summary += f"; no check covers {', '.join(report.uncovered)}"
    return summary


def self_tested(report: GuardrailSelfTest | SelfTestPending) -> cond.Observed:
    if isinstance(report, SelfTestPending):
        reason = "Running" if report.running else "SelfTestFailed"
        return cond.unknown(SELF_TESTED, reason, report.message)
    summary = self_test_summary(report)
    if report.detection_rate is not None and report.detection_rate < MIN_DETECTION_RATE:
        return cond.false(SELF_TESTED, "LowDetectionRate",
                          f"detection rate {report.detection_rate:.0%} is under {MIN_DETECTION_RATE:.0%}: {summary}")
    if (report.false_positive_rate or 0) > MAX_FALSE_POSITIVE_RATE:
        return cond.false(SELF_TESTED, "HighFalsePositiveRate", f"false-positive rate "
                          f"{report.false_positive_rate:.0%} is over {MAX_FALSE_POSITIVE_RATE:.0%}: {summary}")
    return cond.true(SELF_TESTED, "Passed", summary)


def safety_fields(report: GuardrailSelfTest) -> dict[str, Any]:
    return SafetyStatus(detection_rate=report.detection_rate, false_positive_rate=report.false_positive_rate).wire()


def policy_compiled(guardrail: Guardrail, config_map: dict[str, Any] | None) -> cond.Observed:
    name = policy_configmap_name(guardrail)
    if config_map is None or POLICY_KEY not in (config_map.get("data") or {}):
        return cond.false(POLICY_COMPILED, "PolicyConfigMapMissing", f"ConfigMap {name!r} has no {POLICY_KEY} yet")
    checks = len(guardrail.spec.checks)
    return cond.true(POLICY_COMPILED, "Compiled", f"{checks} checks in ConfigMap {name!r} ({guardrail.spec.mode} mode)")


def kept_self_test(guardrail: Guardrail) -> GuardrailSelfTest | None:
    """The self-test status already holds for the current policy, if any."""
    previous = guardrail.status.self_test if guardrail.status else None
    return previous if previous is not None and previous.policy_hash == policy_hash(guardrail.spec) else None


def guardrail_observation(guardrail: Guardrail, live: list[dict[str, Any]],
                          report: GuardrailSelfTest | SelfTestPending) -> Observation:
    compiled = policy_compiled(guardrail, child_in_role(live, "ConfigMap", POLICY_COMPONENT))
    ready = cond.aggregate_ready([compiled], [POLICY_COMPILED], "PolicyCompiled", compiled.message)
    fields: dict[str, Any] = {"checks": len(guardrail.spec.checks)}
    if isinstance(report, GuardrailSelfTest):
        fields |= {"safety": safety_fields(report), "selfTest": report.wire()}
    if compiled.status == "True":
        fields |= {"policyConfigMap": policy_configmap_name(guardrail), "policyHash": policy_hash(guardrail.spec)}
    return Observation(conditions=[compiled, self_tested(report), ready],
                       phase="Ready" if ready.status == "True" else "Pending", fields=fields)


def projected_guardrail_status(guardrail: Guardrail) -> dict[str, Any]:
    """The status a compiled Guardrail reports, for offline previews (`llmops render`)."""
    digest = policy_hash(guardrail.spec)
    report = kept_self_test(guardrail) or selftest_policy_json(policy_json(guardrail.spec), digest)
    return {"phase": "Ready", "conditions": [{"type": cond.READY, "status": "True", "reason": "PolicyCompiled"}],
            "policyConfigMap": policy_configmap_name(guardrail), "policyHash": digest,
            "checks": len(guardrail.spec.checks), "safety": safety_fields(report), "selfTest": report.wire()}
