"""Status of a Guardrail, reduced from its compiled policy ConfigMap and its self-test (pure).

Conditions (each reported on every pass):
- PolicyCompiled: set by the Guardrail controller. True once the policy ConfigMap named in
  status.policyConfigMap exists with the compiled policy; False when the API server did not return it.
  Counts toward Ready.
- Evaluated: only with spec.evaluation; set by the Guardrail controller from the labeled dataset (a ConfigMap
  key) run against the compiled policy in the same worker, once per (policy hash, dataset hash): status.evaluation
  keeps the result. True, reason Passed, when the pass rate reaches minPassRate overall and in every family;
  False, reason BelowMinPassRate, naming the failing family and its numbers; False, reason DatasetMissing or
  InvalidDataset (naming the line); Unknown, reason Running. Counts toward Ready.
- Ready: True when PolicyCompiled (and, with spec.evaluation, Evaluated) is True: consumers (InferenceService,
  FineTune evaluation) may mount the policy. A spec the operator cannot compile (a pattern RE2 cannot run, a
  threshold out of range) never gets here: the glue reports Ready=False, reason InvalidSpec.
- SelfTested: set by the Guardrail controller from the built-in self-test of the compiled policy, which runs in
  the engine's worker process, once per policy hash (status.selfTest keeps the result, so an unchanged policy is never
  tested again, not even after a restart). True, reason Passed, when the checks catch at least 90% of the
  built-in attacks they cover and hit at most 5% of the benign look-alikes; False, reason LowDetectionRate or
  HighFalsePositiveRate, with the numbers; Unknown, reason Running, while the worker has not finished within
  the pass's time budget, or SelfTestFailed with the error. Informational: does not count toward Ready.

status.safety carries the self-test's detectionRate and falsePositiveRate, and with spec.evaluation its score is the
dataset's pass rate (evaluated: the records), which the Safety printer column shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llmops_operator.api.v1alpha1.common import SafetyStatus
from llmops_operator.api.v1alpha1.guardrail import Guardrail, GuardrailEvaluationResult, GuardrailSelfTest
from llmops_operator.builders.guardrail_policy import (
    POLICY_COMPONENT, POLICY_KEY, policy_configmap_name, policy_hash, policy_json,
)
from llmops_operator.builders.labels import child_in_role
from llmops_operator.core import conditions as cond
from llmops_operator.core.contract import Observation
from llmops_operator.guardrails.offline_runs import MAX_FALSE_POSITIVE_RATE, MIN_DETECTION_RATE

POLICY_COMPILED = "PolicyCompiled"
SELF_TESTED = "SelfTested"
EVALUATED = "Evaluated"
RUNNING = "Running"


@dataclass(frozen=True)
class Pending:
    """A worker's result this pass does not have: reason Running, or why it cannot be had (SelfTestFailed,
    DatasetMissing, InvalidDataset, EvaluationFailed)."""

    reason: str
    message: str


@dataclass(frozen=True)
class GuardrailFacts:
    self_test: GuardrailSelfTest | Pending
    evaluation: GuardrailEvaluationResult | Pending | None = None
    """None without spec.evaluation."""


def self_test_summary(report: GuardrailSelfTest) -> str:
    detection = f"{report.detected}/{report.attacks} covered attacks caught" if report.attacks else "no attacks covered"
    summary = f"{detection}, {report.false_positives}/{report.benign} benign texts hit"
    if report.uncovered:
        summary += f"; no check covers {', '.join(report.uncovered)}"
    return summary


def self_tested(report: GuardrailSelfTest | Pending) -> cond.Observed:
    if isinstance(report, Pending):
        return cond.unknown(SELF_TESTED, report.reason, report.message)
    summary = self_test_summary(report)
    if report.detection_rate is not None and report.detection_rate < MIN_DETECTION_RATE:
        return cond.false(SELF_TESTED, "LowDetectionRate",
                          f"detection rate {report.detection_rate:.0%} is under {MIN_DETECTION_RATE:.0%}: {summary}")
    if (report.false_positive_rate or 0) > MAX_FALSE_POSITIVE_RATE:
        return cond.false(SELF_TESTED, "HighFalsePositiveRate", f"false-positive rate "
                          f"{report.false_positive_rate:.0%} is over {MAX_FALSE_POSITIVE_RATE:.0%}: {summary}")
    return cond.true(SELF_TESTED, "Passed", summary)


def evaluated(result: GuardrailEvaluationResult | Pending, min_pass_rate: float) -> cond.Observed:
    if isinstance(result, Pending):
        observe = cond.unknown if result.reason == RUNNING else cond.false
        return observe(EVALUATED, result.reason, result.message)
    failing = sorted((f for f in result.families if f.passed < min_pass_rate * f.records),
                     key=lambda f: (f.passed / f.records, f.family))
    overall = f"{result.passed}/{result.records} records passed ({result.pass_rate:.0%})"
    if failing or result.pass_rate < min_pass_rate:
        named = "; ".join(f"family {f.family!r} {f.passed}/{f.records} ({f.passed / f.records:.0%})" for f in failing)
        return cond.false(EVALUATED, "BelowMinPassRate", f"{named or overall}: under the minimum pass rate "
                          f"{min_pass_rate:.0%}" + (f"; overall {overall}" if named else ""))
    return cond.true(EVALUATED, "Passed", f"{overall}, every family at or over {min_pass_rate:.0%}")


def safety_fields(report: GuardrailSelfTest | Pending,
                  evaluation: GuardrailEvaluationResult | Pending | None = None) -> dict[str, Any]:
    safety = SafetyStatus()
    if isinstance(report, GuardrailSelfTest):
        safety = SafetyStatus(detection_rate=report.detection_rate, false_positive_rate=report.false_positive_rate)
    if isinstance(evaluation, GuardrailEvaluationResult):
        safety = safety.model_copy(update={"score": evaluation.pass_rate, "evaluated": evaluation.records})
    return safety.wire()


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


def kept_evaluation(guardrail: Guardrail, dataset_hash: str) -> GuardrailEvaluationResult | None:
    """The evaluation status already holds for the current policy and dataset, if any."""
    previous = guardrail.status.evaluation if guardrail.status else None
    if previous is None or (previous.policy_hash, previous.dataset_hash) != (policy_hash(guardrail.spec), dataset_hash):
        return None
    return previous


def guardrail_observation(guardrail: Guardrail, live: list[dict[str, Any]], facts: GuardrailFacts) -> Observation:
    compiled = policy_compiled(guardrail, child_in_role(live, "ConfigMap", POLICY_COMPONENT))
    conditions = [compiled, self_tested(facts.self_test)]
    fields: dict[str, Any] = {"checks": len(guardrail.spec.checks),
                              "safety": safety_fields(facts.self_test, facts.evaluation)}
    if isinstance(facts.self_test, GuardrailSelfTest):
        fields["selfTest"] = facts.self_test.wire()
    if guardrail.spec.evaluation is not None and facts.evaluation is not None:
        conditions.append(evaluated(facts.evaluation, guardrail.spec.evaluation.min_pass_rate))
        if isinstance(facts.evaluation, GuardrailEvaluationResult):
            fields["evaluation"] = facts.evaluation.wire()
    required = [POLICY_COMPILED] + ([EVALUATED] if len(conditions) > 2 else [])
    ready = cond.aggregate_ready(conditions, required, "PolicyCompiled", compiled.message)
    if compiled.status == "True":
        fields |= {"policyConfigMap": policy_configmap_name(guardrail), "policyHash": policy_hash(guardrail.spec)}
    return Observation(conditions=[*conditions, ready], phase="Ready" if ready.status == "True" else "Pending",
                       fields=fields)


def projected_guardrail_status(guardrail: Guardrail) -> dict[str, Any]:
    """The status a compiled Guardrail reports, for offline previews (`llmops render`)."""
    from llmops_operator.guardrails.selftest import selftest_policy_json  # the engine: only previews run it here

    digest = policy_hash(guardrail.spec)
    report = kept_self_test(guardrail) or selftest_policy_json(policy_json(guardrail.spec), digest)
    return {"phase": "Ready", "conditions": [{"type": cond.READY, "status": "True", "reason": "PolicyCompiled"}],
            "policyConfigMap": policy_configmap_name(guardrail), "policyHash": digest,
            "checks": len(guardrail.spec.checks), "safety": safety_fields(report), "selfTest": report.wire()}
