"""Status of a PromptRelease, reduced from its ConfigMaps, its previous status and the rollout's facts (pure).

Conditions (each reported on every pass):
- Released: set by the PromptRelease controller. True once the ConfigMap of every routed version and the
  routing ConfigMap exist; False naming the first missing one. Counts toward Ready.
- TargetAttached: only with spec.target. True when the InferenceService exists and its spec.promptReleaseRef
  names this release; False (TargetNotFound, TargetMismatch) otherwise. Does not count toward Ready: the
  service waits for this release to be Ready before it mounts it.
- Evaluated: only with spec.evaluation and a canary. True once the candidate's content has an evaluation
  result (passed or not: the gates say that); Unknown while it runs or waits to run; False with the reason
  of the last failed attempt (DatasetTooLarge, DatasetInvalid, GuardrailInvalid, ServiceUnavailable,
  ScoringFailed, TimedOut, EvaluationError), naming the field, until an attempt succeeds. Does not count
  toward Ready.
- Ready: True when Released is True: consumers (InferenceService) may mount the versions named in
  status.stable and status.canary.

Phase: Canary while the candidate gets traffic (weight above 0); Evaluating, EvaluationFailed or RolledBack
as the rollout says; Stable otherwise; Pending before the ConfigMaps exist.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from llmops_operator.api.v1alpha1.promptrelease import (
    EvaluationResult, HistoryEntry, PromptDrift, PromptRelease, ReleasedVersion,
)
from llmops_operator.builders.prompts import Routes, routing_configmap_name, version_configmap_name, version_hash
from llmops_operator.core.contract import Observation
from llmops_operator.core import conditions as cond
from llmops_operator.status.rollout import (
    EVALUATING, EVALUATION_FAILED, ROLLED_BACK, Action, Decision, LiveFacts, RolloutInput, decide,
)

RELEASED = "Released"
TARGET_ATTACHED = "TargetAttached"
EVALUATED = "Evaluated"
HISTORY_LIMIT = 10
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class PromptFacts:
    """What the controller's observe learnt this pass."""

    evaluation: EvaluationResult | None = None
    """A fresh evaluation of the candidate (None: none ran this pass; the cached one in status counts)."""
    drift: PromptDrift | None = None
    """Output-length drift measured with the fresh evaluation."""
    evaluation_waits_for: str | None = None
    """Why the candidate has no evaluation result yet (running, queued, or the last attempt's failure)."""
    evaluation_failure: tuple[str, str] | None = None
    """(reason, message) of the last failed attempt while none runs; a later attempt may succeed."""
    evaluation_may_start: bool = False
    """Whether an attempt may start now: none runs and the backoff after a failure has passed."""
    target_url: str | None = None
    """The target's URL, once it is attached and serving."""
    live: LiveFacts = field(default_factory=LiveFacts)
    target: cond.Observed | None = None
    """TargetAttached, when spec.target is set."""


@dataclass(frozen=True)
class PassDecision:
    """What one pass over a release decides, once: the rollout, and whether to start the candidate's evaluation."""

    rollout: Decision
    evaluate_at: str | None = None
    """The target URL to evaluate the candidate through, starting now; None: no attempt starts."""


def candidate_hash(release: PromptRelease) -> str | None:
    canary = release.spec.rollout.canary
    return version_hash(release.spec.version(canary.version)) if canary else None


def cached_evaluation(release: PromptRelease) -> EvaluationResult | None:
    """The evaluation in the previous status, when it is about the current candidate's content."""
    canary = release.spec.rollout.canary
    previous = release.status.evaluation if release.status else None
    if canary is None or previous is None:
        return None
    return previous if (previous.version, previous.hash) == (canary.version, candidate_hash(release)) else None


def rollout_input(release: PromptRelease, facts: PromptFacts | None, now: datetime) -> RolloutInput:
    spec = release.spec
    facts = facts or PromptFacts()
    status = release.status
    return RolloutInput(stable=spec.rollout.stable, canary=spec.rollout.canary, candidate_hash=candidate_hash(release),
                        analysis=spec.analysis, evaluates=spec.evaluation is not None,
                        evaluation=facts.evaluation or cached_evaluation(release),
                        previous=status.rollout if status else None, live=facts.live, now=now,
                        rollback_to=spec.rollback_to,
                        previous_stable=status.stable.version if status and status.stable else None,
                        evaluation_waits_for=facts.evaluation_waits_for)


def pass_decision(release: PromptRelease, facts: PromptFacts | None, now: datetime) -> PassDecision:
    """The decision of one pass (pure). Without facts (an offline render, a prune) the rollout holds where the
    last status left it: nothing measured fails a gate or passes a step."""
    facts = facts or PromptFacts()
    decision = decide(rollout_input(release, facts, now))
    return PassDecision(decision, facts.target_url if _starts_evaluation(release, facts, decision) else None)


def _starts_evaluation(release: PromptRelease, facts: PromptFacts, decision: Decision) -> bool:
    """An attempt starts once the routing with the candidate at weight 0 is out (the previous pass decided it
    for this very content), the target serves, and no attempt runs or backs off."""
    previous = release.status.rollout if release.status else None
    return (decision.action is Action.EVALUATE and facts.target_url is not None and facts.evaluation_may_start
            and previous is not None and previous.state == EVALUATING
            and previous.candidate_hash == decision.rollout.candidate_hash)


# ----- conditions and fields ------------------------------------------------------------------------

def released_versions(release: PromptRelease, routes: Routes) -> list[ReleasedVersion]:
    return [ReleasedVersion(version=v, config_map=version_configmap_name(release, v), weight=w) for v, w in routes]


def released(release: PromptRelease, live: list[dict[str, Any]], routes: Routes) -> cond.Observed:
    present = {c["metadata"]["name"] for c in live if c}
    wanted = [v.config_map for v in released_versions(release, routes)] + [routing_configmap_name(release)]
    missing = [name for name in wanted if name not in present]
    if missing:
        return cond.false(RELEASED, "ConfigMapMissing", f"ConfigMap {missing[0]!r} does not exist yet")
    return cond.true(RELEASED, "Released", summary(routes))


def summary(routes: Routes) -> str:
    if len(routes) == 1:
        return f"version {routes[0][0]!r} serves all traffic"
    (stable, rest), (canary, weight) = routes
    return f"version {stable!r} serves {rest}%, canary {canary!r} {weight}%"


def release_fields(release: PromptRelease, routes: Routes) -> dict[str, Any]:
    versions = released_versions(release, routes)
    fields: dict[str, Any] = {"stable": versions[0].wire(), "routingConfigMap": routing_configmap_name(release)}
    if len(versions) > 1:
        fields["canary"] = versions[1].wire()
    return fields


def phase_of(decision: Decision, ready: cond.Observed) -> str:
    if ready.status != "True":
        return "Pending"
    if decision.candidate is not None and decision.weight > 0:
        return "Canary"
    state = decision.rollout.state
    return state if state in (EVALUATING, EVALUATION_FAILED, ROLLED_BACK) else "Stable"


def history_after(release: PromptRelease, decision: Decision, now: datetime) -> list[dict[str, Any]]:
    """The previous history plus this pass' event, the last HISTORY_LIMIT kept."""
    entries = list(release.status.history) if release.status else []
    if decision.history is not None:
        rollout = decision.rollout
        version = decision.stable if decision.history == ROLLED_BACK and rollout.candidate is None \
            else (rollout.candidate or decision.stable)
        reason = rollout.message if decision.history in (ROLLED_BACK, EVALUATION_FAILED) else None
        entries.append(HistoryEntry(version=version, hash=rollout.candidate_hash, event=decision.history,
                                    at=cond.now_rfc3339(now), reason=reason))
    return [e.wire() for e in entries[-HISTORY_LIMIT:]]


def drift_field(release: PromptRelease, facts: PromptFacts, decision: Decision) -> dict[str, Any] | None:
    if decision.rollout.candidate is None and release.spec.rollout.canary is None:
        return None
    if facts.drift is not None:
        return facts.drift.wire()
    previous = release.status.drift if release.status else None
    if previous is not None and cached_evaluation(release) is not None:
        return previous.wire()
    return PromptDrift(message="not enough traffic: output lengths are compared when the candidate is "
                               "evaluated with spec.evaluation").wire()


def evaluated(release: PromptRelease, facts: PromptFacts) -> cond.Observed | None:
    """Evaluated, with spec.evaluation and a canary (see the module's list of conditions)."""
    canary = release.spec.rollout.canary
    if release.spec.evaluation is None or canary is None:
        return None
    result = facts.evaluation or cached_evaluation(release)
    if result is not None:
        return cond.true(EVALUATED, "Evaluated", f"version {canary.version!r} scored {result.score} with safety "
                                                 f"{result.safety} on {result.examples} examples")
    if facts.evaluation_failure is not None:
        return cond.false(EVALUATED, *facts.evaluation_failure)
    return cond.unknown(EVALUATED, "Evaluating", facts.evaluation_waits_for or
                        f"version {canary.version!r} is evaluated once the service routes it at weight 0")


def release_observation(release: PromptRelease, live: list[dict[str, Any]], facts: PromptFacts | None,
                        now: datetime, decided: PassDecision | None = None) -> Observation:
    """Status from the children, the facts and the pass's decision (made here when the caller has none)."""
    facts = facts or PromptFacts()
    decision = (decided or pass_decision(release, facts, now)).rollout
    routes = decision.routes
    done = released(release, live, routes)
    ready = cond.aggregate_ready([done], [RELEASED], "Released", done.message)
    observed = [done, *(c for c in (facts.target, evaluated(release, facts)) if c is not None), ready]
    if done.status != "True":
        return Observation(conditions=observed, phase=phase_of(decision, ready), fields={})
    fields = {**release_fields(release, routes), "rollout": decision.rollout.wire(),
              "history": history_after(release, decision, now)}
    evaluation = facts.evaluation or cached_evaluation(release)
    if evaluation is not None:
        fields["evaluation"] = evaluation.wire()
    drift = drift_field(release, facts, decision)
    if drift is not None:
        fields["drift"] = drift
    return Observation(conditions=observed, phase=phase_of(decision, ready), fields=fields)


def projected_release_status(release: PromptRelease) -> dict[str, Any]:
    """The status a released PromptRelease reports, for offline previews (`llmops render`)."""
    decision = pass_decision(release, None, EPOCH).rollout
    ready = cond.true(cond.READY, "Released")
    return {"phase": phase_of(decision, ready),
            "conditions": [{"type": cond.READY, "status": "True", "reason": "Released"}],
            **release_fields(release, decision.routes)}
