"""Status of a PromptRelease, reduced from its ConfigMaps, its previous status and the rollout's facts (pure).

Conditions (each reported on every pass):
- Released: set by the PromptRelease controller. True once the ConfigMap of every routed version and the
  routing ConfigMap exist; False naming the first missing one. Counts toward Ready.
- TargetAttached: only with spec.target. True when the InferenceService exists and its spec.promptReleaseRef
  names this release; False (TargetNotFound, TargetMismatch) otherwise. Does not count toward Ready: the
  service waits for this release to be Ready before it mounts it.
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
    EVALUATING, EVALUATION_FAILED, ROLLBACK_REQUESTED, ROLLED_BACK, Decision, LiveFacts, RolloutInput, decide,
)

RELEASED = "Released"
TARGET_ATTACHED = "TargetAttached"
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
    """Why the evaluation could not run this pass; it is tried again."""
    live: LiveFacts = field(default_factory=LiveFacts)
    target: cond.Observed | None = None
    """TargetAttached, when spec.target is set."""


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


def rollout_input(release: PromptRelease, facts: PromptFacts | None, now: datetime,
                  with_previous: bool = True) -> RolloutInput:
    spec = release.spec
    facts = facts or PromptFacts()
    previous = release.status.rollout if release.status and with_previous else None
    return RolloutInput(stable=spec.rollout.stable, canary=spec.rollout.canary, candidate_hash=candidate_hash(release),
                        analysis=spec.analysis, evaluates=spec.evaluation is not None,
                        evaluation=facts.evaluation or cached_evaluation(release), previous=previous,
                        live=facts.live, now=now, rollback_to=spec.rollback_to,
                        evaluation_waits_for=facts.evaluation_waits_for)


def decision_of(release: PromptRelease, facts: PromptFacts | None, now: datetime) -> Decision:
    return decide(rollout_input(release, facts, now))


def planned_routes(release: PromptRelease) -> Routes:
    """The split to apply before this pass measures anything: the last status' decision while it still fits
    the spec, else what the spec asks for with nothing measured (a new candidate starts at its beginning)."""
    kept = _routes_in_status(release)
    return kept if kept is not None else decide(rollout_input(release, None, EPOCH, with_previous=False)).routes


def _routes_in_status(release: PromptRelease) -> Routes | None:
    status = release.status
    if status is None or status.rollout is None or status.stable is None:
        return None
    spec = release.spec
    rollout = status.rollout
    canary = spec.rollout.canary
    names = {v.name for v in spec.versions}
    routes = [(status.stable.version, status.stable.weight if status.stable.weight is not None else 100)]
    if status.canary is not None:
        routes.append((status.canary.version, status.canary.weight or 0))
    fits = (all(v in names for v, _ in routes)
            and rollout.candidate == (canary.version if canary else None)
            and rollout.candidate_hash == candidate_hash(release)
            and (spec.rollback_to is not None) == (rollout.message or "").startswith(ROLLBACK_REQUESTED)
            and routes[0][0] in {spec.rollout.stable, spec.rollback_to, canary.version if canary else None})
    return routes if fits else None


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


def release_observation(release: PromptRelease, live: list[dict[str, Any]], facts: PromptFacts | None,
                        now: datetime) -> Observation:
    facts = facts or PromptFacts()
    decision = decision_of(release, facts, now)
    routes = decision.routes
    done = released(release, live, routes)
    ready = cond.aggregate_ready([done], [RELEASED], "Released", done.message)
    observed = [done, *([facts.target] if facts.target else []), ready]
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
    decision = decide(rollout_input(release, None, EPOCH, with_previous=False))
    ready = cond.true(cond.READY, "Released")
    return {"phase": phase_of(decision, ready),
            "conditions": [{"type": cond.READY, "status": "True", "reason": "Released"}],
            **release_fields(release, decision.routes)}
