"""The canary decision of a PromptRelease: which versions serve at which weights, this pass (pure).

Level-based: everything is derived from the spec, the previous status (state, step, step start, request
counter at step start) and the facts of this pass (the candidate's offline evaluation, live metrics).
Nothing is remembered in the process and the spec is never written back, so a restart, a missed event or
an Argo CD sync lands on the same answer.

States (status.rollout.state):
- Stable: no candidate; the stable version serves everything.
- Evaluating: the candidate is routed at weight 0 (reachable only when forced, for its evaluation); an
  evaluation that cannot run yet is tried again each pass, the reason in the message.
- EvaluationFailed: the evaluation's score or safety failed a gate; the candidate is not routed.
- Canary: a fixed canary.weight, held until the spec changes.
- Progressing: walking canary.steps; a step advances when its minDuration has passed, the candidate has
  served minRequests in it, and every live gate is Successful (Inconclusive waits).
- Promoted: the last step passed; the candidate serves all traffic as the stable version.
- RolledBack: a live gate failed (or spec.rollbackTo asks for it); the candidate gets no traffic.
Promoted and RolledBack stick to the candidate's content hash: a new template (new hash) starts over.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any

from llmops_operator.api.v1alpha1.promptrelease import (
    AnalysisSpec, CanarySpec, EvaluationResult, GateResult, RolloutStatus,
)
from llmops_operator.api.v1alpha1.units import parse_duration
from llmops_operator.core import conditions as cond

STABLE, EVALUATING, EVALUATION_FAILED = "Stable", "Evaluating", "EvaluationFailed"
CANARY, PROGRESSING, PROMOTED, ROLLED_BACK = "Canary", "Progressing", "Promoted", "RolledBack"
STICKY = (PROMOTED, ROLLED_BACK)
SUCCESSFUL, FAILED, INCONCLUSIVE = "Successful", "Failed", "Inconclusive"


class Action(str, Enum):
    """What one pass does with the candidate; also status.rollout.reason, the action that put the rollout in its
    state (a kept Promoted or RolledBack state keeps the reason it had)."""

    SERVE_STABLE = "ServeStable"
    """No candidate in the spec: the stable version serves everything."""
    EVALUATE = "Evaluate"
    """The candidate is routed at weight 0 until its offline evaluation finishes."""
    REJECT = "Reject"
    """Its evaluation failed a gate: the candidate is not routed."""
    HOLD = "Hold"
    """The current step's weight stays (a fixed weight, or a step still waiting)."""
    STEP = "Step"
    """The step passed: the next step's weight."""
    PROMOTE = "Promote"
    """The last step passed: the candidate serves everything."""
    ROLLBACK = "Rollback"
    """A live gate failed: the candidate gets nothing."""
    ROLLBACK_REQUESTED = "RollbackRequested"
    """spec.rollbackTo: only that version serves."""
    KEEP = "Keep"
    """A promoted or rolled-back candidate stays so."""


@dataclass(frozen=True)
class LiveFacts:
    """What the target's metrics say this pass; None fields are not measured (yet)."""

    candidate_requests: int | None = None
    """The candidate's request counter (all outcomes)."""
    candidate_safety: float | None = None
    latency_p99_ms: float | None = None
    cost_per1k_tokens: float | None = None


@dataclass(frozen=True)
class RolloutInput:
    stable: str
    canary: CanarySpec | None
    candidate_hash: str | None
    analysis: AnalysisSpec | None
    evaluates: bool
    """Whether spec.evaluation is set (the candidate must pass it before any traffic)."""
    evaluation: EvaluationResult | None
    """The evaluation of this candidate hash, when one has finished."""
    previous: RolloutStatus | None
    live: LiveFacts
    now: datetime
    rollback_to: str | None = None
    previous_stable: str | None = None
    """The version that served everything (or the rest) after the previous pass (status.stable.version)."""
    evaluation_waits_for: str | None = None
    """Why the evaluation could not run this pass (the service does not route the candidate yet, is
    unreachable, the dataset is missing); it is tried again next pass."""


@dataclass(frozen=True)
class Decision:
    stable: str
    """The version that serves the rest of the traffic."""
    candidate: str | None
    """The candidate routed beside it (possibly at weight 0), or None."""
    weight: int
    """The candidate's percent of traffic."""
    rollout: RolloutStatus
    action: Action
    """What this pass does; `rollout.message` says the same for a person."""
    event: tuple[str, str] | None = None
    """(reason, message) of a Kubernetes Event to post: only on a transition to Promoted, RolledBack or
    EvaluationFailed."""
    history: str | None = None
    """The history event this pass adds (same transitions, plus Released for a new candidate)."""

    @property
    def routes(self) -> list[tuple[str, int]]:
        if self.candidate is None:
            return [(self.stable, 100)]
        return [(self.stable, 100 - self.weight), (self.candidate, self.weight)]


# ----- gates ----------------------------------------------------------------------------------------

def gate(metric: str, value: float | None, threshold: float, minimum: bool) -> GateResult:
    """Successful when value is at least (minimum) or at most (maximum) threshold; Inconclusive without a value."""
    bound = "at least" if minimum else "at most"
    if value is None:
        return GateResult(metric=metric, threshold=threshold, phase=INCONCLUSIVE, message=f"no {metric} measured yet")
    passed = value >= threshold if minimum else value <= threshold
    return GateResult(metric=metric, value=round(value, 4), threshold=threshold,
                      phase=SUCCESSFUL if passed else FAILED,
                      message=f"{metric} {value:.4g} {'is' if passed else 'is not'} {bound} {threshold:g}")


def evaluation_gates(analysis: AnalysisSpec | None, result: EvaluationResult) -> list[GateResult]:
    if analysis is None:
        return []
    gates = []
    if analysis.min_evaluation_score is not None:
        gates.append(gate("evaluationScore", result.score, analysis.min_evaluation_score, minimum=True))
    if analysis.min_safety is not None:
        gates.append(gate("evaluationSafety", result.safety, analysis.min_safety, minimum=True))
    if analysis.min_context_recall is not None:
        gates.append(gate("contextRecall", result.context_recall, analysis.min_context_recall, minimum=True))
    if analysis.min_faithfulness is not None:
        gates.append(gate("faithfulness", result.faithfulness, analysis.min_faithfulness, minimum=True))
    if analysis.min_judge_faithfulness is not None:
        gates.append(gate("judgeFaithfulness", result.judge_faithfulness, analysis.min_judge_faithfulness,
                          minimum=True))
    return gates


def live_gates(analysis: AnalysisSpec | None, live: LiveFacts) -> list[GateResult]:
    if analysis is None:
        return []
    wanted = [("safety", live.candidate_safety, analysis.min_safety, True),
              ("costPer1kTokens", live.cost_per1k_tokens, analysis.max_cost_per1k_tokens, False),
              ("latencyP99Ms", live.latency_p99_ms, analysis.max_latency_p99_ms, False)]
    return [gate(metric, value, threshold, minimum) for metric, value, threshold, minimum in wanted
            if threshold is not None]


def first_failed(gates: list[GateResult]) -> GateResult | None:
    return next((g for g in gates if g.phase == FAILED), None)


# ----- the decision ---------------------------------------------------------------------------------

def decide(given: RolloutInput) -> Decision:
    """The traffic split and rollout state for this pass."""
    if given.rollback_to is not None:
        return _rollback_requested(given)
    if given.canary is None:
        return Decision(given.stable, None, 0, RolloutStatus(state=STABLE, reason=Action.SERVE_STABLE.value),
                        action=Action.SERVE_STABLE)
    previous = _same_candidate(given)
    if previous is not None and previous.state in STICKY:
        return _kept(given, previous)
    if given.evaluates:
        held = _evaluation_hold(given)
        if held is not None:
            return held
    return _step(given, previous)


def _same_candidate(given: RolloutInput) -> RolloutStatus | None:
    """The previous rollout status when it was about this very candidate (same version and content)."""
    previous = given.previous
    if previous is None or given.canary is None:
        return None
    if previous.candidate != given.canary.version or previous.candidate_hash != given.candidate_hash:
        return None
    if previous.reason == Action.ROLLBACK_REQUESTED.value:  # rollbackTo was removed: start over
        return None
    return previous


def _base(given: RolloutInput, action: Action, **fields: Any) -> RolloutStatus:
    canary = given.canary
    return RolloutStatus(candidate=canary.version if canary else None, candidate_hash=given.candidate_hash,
                         steps=len(canary.effective_steps()) if canary else None, reason=action.value, **fields)


def _rollback_requested(given: RolloutInput) -> Decision:
    target = given.rollback_to
    message = f"spec.rollbackTo: version {target!r} serves all traffic"
    rollout = RolloutStatus(state=ROLLED_BACK, candidate=given.canary.version if given.canary else None,
                            candidate_hash=given.candidate_hash, message=message,
                            reason=Action.ROLLBACK_REQUESTED.value)
    previous = given.previous
    fresh = previous is None or previous.reason != Action.ROLLBACK_REQUESTED.value or given.previous_stable != target
    return Decision(target, None, 0, rollout, action=Action.ROLLBACK_REQUESTED,
                    event=("RollbackRequested", message) if fresh else None, history=ROLLED_BACK if fresh else None)


def _kept(given: RolloutInput, previous: RolloutStatus) -> Decision:
    """A promoted candidate keeps serving everything; a rolled-back one keeps serving nothing."""
    if previous.state == PROMOTED:
        return Decision(given.canary.version, None, 0, previous, action=Action.KEEP)
    return Decision(given.stable, None, 0, previous, action=Action.KEEP)


def _evaluation_hold(given: RolloutInput) -> Decision | None:
    """Evaluating (weight 0, routed so it can be forced) or EvaluationFailed (not routed); None once passed."""
    result = given.evaluation
    version = given.canary.version
    if result is None:
        message = f"evaluating version {version!r} before it gets traffic"
        if given.evaluation_waits_for:
            message += f"; not done yet: {given.evaluation_waits_for}"
        rollout = _base(given, Action.EVALUATE, state=EVALUATING, message=message)
        fresh = given.previous is None or given.previous.candidate_hash != given.candidate_hash
        return Decision(given.stable, version, 0, rollout, action=Action.EVALUATE,
                        history="Released" if fresh else None)
    gates = evaluation_gates(given.analysis, result)
    failed = first_failed(gates)
    if failed is None:
        return None
    message = f"version {version!r} failed its evaluation: {failed.message}"
    rollout = _base(given, Action.REJECT, state=EVALUATION_FAILED, gates=gates, message=message)
    fresh = given.previous is None or given.previous.state != EVALUATION_FAILED or \
        given.previous.candidate_hash != given.candidate_hash
    return Decision(given.stable, None, 0, rollout, action=Action.REJECT,
                    event=("EvaluationFailed", message) if fresh else None,
                    history=EVALUATION_FAILED if fresh else None)


def _step(given: RolloutInput, previous: RolloutStatus | None) -> Decision:
    canary = given.canary
    steps = canary.effective_steps()
    counter = given.live.candidate_requests
    continuing = previous is not None and previous.state in (CANARY, PROGRESSING) and previous.step is not None \
        and previous.step < len(steps)
    if continuing:
        index, started = previous.step, cond.parse_rfc3339(previous.step_started_at) or given.now
        base = previous.requests_at_step_start or 0
    else:
        index, started, base = 0, given.now, counter or 0
    if counter is not None and counter < base:  # the runtime restarted and its counters with it
        base = 0
    served = (counter - base) if counter is not None else 0
    gates = [*_passed_evaluation_gates(given), *live_gates(given.analysis, given.live)]
    state = PROGRESSING if canary.progressive else CANARY
    rollout = _base(given, Action.HOLD, state=state, step=index, step_started_at=cond.now_rfc3339(started),
                    requests_at_step_start=base, step_requests=served, gates=gates)
    history = "Released" if previous is None else None
    failed = first_failed([g for g in gates if not g.metric.startswith("evaluation")])
    if failed is not None:
        message = f"version {canary.version!r} rolled back at step {index}: {failed.message}"
        rolled_back = _with(rollout, state=ROLLED_BACK, message=message, reason=Action.ROLLBACK.value)
        return Decision(given.stable, None, 0, rolled_back, action=Action.ROLLBACK,
                        event=("RolledBack", message), history=ROLLED_BACK)
    return _advance(given, rollout, index, started, served, gates, history)


def _advance(given: RolloutInput, rollout: RolloutStatus, index: int, started: datetime, served: int,
             gates: list[GateResult], history: str | None) -> Decision:
    """Hold the step, move to the next one, or promote after the last."""
    canary = given.canary
    steps = canary.effective_steps()
    waiting = _waiting_for(steps[index], given.now, started, served, gates)
    if not canary.progressive or waiting:
        message = "; ".join(waiting) if waiting else f"holding at the fixed weight {steps[index].weight}%"
        return Decision(given.stable, canary.version, steps[index].weight, _with(rollout, message=message),
                        action=Action.HOLD, history=history)
    if index + 1 < len(steps):
        advanced = _with(rollout, step=index + 1, step_started_at=cond.now_rfc3339(given.now),
                         requests_at_step_start=given.live.candidate_requests or 0, step_requests=0,
                         reason=Action.STEP.value,
                         message=f"step {index} passed; step {index + 1} sends {steps[index + 1].weight}%")
        return Decision(given.stable, canary.version, steps[index + 1].weight, advanced, action=Action.STEP,
                        history=history)
    message = f"version {canary.version!r} passed all {len(steps)} steps and serves all traffic"
    promoted = _with(rollout, state=PROMOTED, message=message, reason=Action.PROMOTE.value)
    return Decision(canary.version, None, 0, promoted, action=Action.PROMOTE, event=("Promoted", message),
                    history=PROMOTED)


def _with(rollout: RolloutStatus, **changes: Any) -> RolloutStatus:
    return rollout.model_copy(update=changes)


def _passed_evaluation_gates(given: RolloutInput) -> list[GateResult]:
    if not given.evaluates or given.evaluation is None:
        return []
    return evaluation_gates(given.analysis, given.evaluation)


def _waiting_for(step: Any, now: datetime, started: datetime, served: int, gates: list[GateResult]) -> list[str]:
    """What still keeps the step from advancing, in words; empty when it may advance."""
    waiting = []
    left = parse_duration(step.min_duration) - (now - started).total_seconds()
    if left > 0:
        waiting.append(f"{int(left + 0.999)}s left of minDuration {step.min_duration}")
    if served < step.min_requests:
        waiting.append(f"{served}/{step.min_requests} requests")
    waiting.extend(f"gate {g.metric} inconclusive" for g in gates if g.phase == INCONCLUSIVE)
    return waiting

