"""The PromptRelease canary decision (status/rollout.py): one row per situation, real spec models."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from llmops_operator.api.v1alpha1.promptrelease_evaluation import EvaluationResult
from llmops_operator.api.v1alpha1.promptrelease_rollout import AnalysisSpec, CanarySpec, RolloutStatus
from llmops_operator.status.rollout import Action, LiveFacts, RolloutInput, decide, gate

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=timezone.utc)
HASH = "abc12345"
STEPS = CanarySpec.model_validate({"version": "v2", "steps": [
    {"weight": 10, "minDuration": "10m", "minRequests": 100},
    {"weight": 50, "minDuration": "10m", "minRequests": 100}]})
FIXED = CanarySpec.model_validate({"version": "v2", "weight": 25})
GATES = AnalysisSpec.model_validate({"minEvaluationScore": 0.6, "minSafety": 0.95, "maxLatencyP99Ms": 800})


def at(minutes_ago: float) -> str:
    return (NOW - timedelta(minutes=minutes_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def progressing(step: int, started_minutes_ago: float, base: int, state: str = "Progressing",
                candidate_hash: str = HASH, **fields) -> RolloutStatus:
    return RolloutStatus(state=state, candidate="v2", candidate_hash=candidate_hash, step=step, steps=2,
                         step_started_at=at(started_minutes_ago), requests_at_step_start=base, **fields)


def evaluated(score: float = 0.8, safety: float = 1.0) -> EvaluationResult:
    return EvaluationResult(version="v2", hash=HASH, score=score, safety=safety, examples=5)


HEALTHY = LiveFacts(candidate_requests=1000, candidate_safety=0.99, latency_p99_ms=300)


def given(canary=STEPS, analysis=GATES, evaluates=True, evaluation=None, previous=None, live=LiveFacts(),
          rollback_to=None) -> RolloutInput:
    return RolloutInput(stable="v1", canary=canary, candidate_hash=HASH, analysis=analysis, evaluates=evaluates,
                        evaluation=evaluation, previous=previous, live=live, now=NOW, rollback_to=rollback_to)


# (name, input, expected routes, expected state, expected step, event reason or None)
TABLE = [
    ("no canary: stable only", given(canary=None), [("v1", 100)], "Stable", None, None),
    ("new candidate waits for its evaluation at weight 0", given(), [("v1", 100), ("v2", 0)], "Evaluating", None,
     None),
    ("a low evaluation score keeps the candidate out of the routing",
     given(evaluation=evaluated(score=0.4)), [("v1", 100)], "EvaluationFailed", None, "EvaluationFailed"),
    ("an unsafe evaluation keeps it out", given(evaluation=evaluated(safety=0.5)), [("v1", 100)],
     "EvaluationFailed", None, "EvaluationFailed"),
    ("an evaluation that could not run waits at weight 0",
     given(previous=RolloutStatus(state="Evaluating", candidate="v2", candidate_hash=HASH)),
     [("v1", 100), ("v2", 0)], "Evaluating", None, None),
    ("a failed evaluation is reported once",
     given(evaluation=evaluated(score=0.4), previous=RolloutStatus(state="EvaluationFailed", candidate="v2",
                                                                    candidate_hash=HASH)),
     [("v1", 100)], "EvaluationFailed", None, None),
    ("a passed evaluation starts step 0", given(evaluation=evaluated(), live=HEALTHY),
     [("v1", 90), ("v2", 10)], "Progressing", 0, None),
    ("without evaluation the first step starts at once", given(evaluates=False, analysis=None),
     [("v1", 90), ("v2", 10)], "Progressing", 0, None),
    ("too early to advance", given(evaluation=evaluated(), previous=progressing(0, 5, 0), live=HEALTHY),
     [("v1", 90), ("v2", 10)], "Progressing", 0, None),
    ("too few requests to advance",
     given(evaluation=evaluated(), previous=progressing(0, 20, 950), live=HEALTHY),
     [("v1", 90), ("v2", 10)], "Progressing", 0, None),
    ("an inconclusive gate waits",
     given(evaluation=evaluated(), previous=progressing(0, 20, 0), live=LiveFacts(candidate_requests=500)),
     [("v1", 90), ("v2", 10)], "Progressing", 0, None),
    ("time, requests and gates passed: next step",
     given(evaluation=evaluated(), previous=progressing(0, 20, 0), live=HEALTHY),
     [("v1", 50), ("v2", 50)], "Progressing", 1, None),
    ("the last step passed: promoted",
     given(evaluation=evaluated(), previous=progressing(1, 20, 0), live=HEALTHY), [("v2", 100)], "Promoted", 1,
     "Promoted"),
    ("a promoted candidate stays promoted",
     given(evaluation=evaluated(), previous=progressing(1, 20, 0, state="Promoted"), live=HEALTHY),
     [("v2", 100)], "Promoted", 1, None),
    ("an unsafe candidate is rolled back",
     given(evaluation=evaluated(), previous=progressing(1, 1, 0),
           live=LiveFacts(candidate_requests=50, candidate_safety=0.8, latency_p99_ms=300)),
     [("v1", 100)], "RolledBack", 1, "RolledBack"),
    ("a slow service rolls the candidate back",
     given(evaluation=evaluated(), previous=progressing(0, 1, 0),
           live=LiveFacts(candidate_requests=50, candidate_safety=1.0, latency_p99_ms=2000)),
     [("v1", 100)], "RolledBack", 0, "RolledBack"),
    ("a rolled-back candidate stays out",
     given(evaluation=evaluated(), previous=progressing(0, 1, 0, state="RolledBack"), live=HEALTHY),
     [("v1", 100)], "RolledBack", 0, None),
    ("an edited candidate (new hash) starts over",
     given(evaluation=None, previous=progressing(0, 1, 0, state="RolledBack", candidate_hash="old")),
     [("v1", 100), ("v2", 0)], "Evaluating", None, None),
    ("a fixed weight holds and is never promoted",
     given(canary=FIXED, evaluates=False, analysis=None,
           previous=RolloutStatus(state="Canary", candidate="v2", candidate_hash=HASH, step=0,
                                  step_started_at=at(600), requests_at_step_start=0),
           live=HEALTHY), [("v1", 75), ("v2", 25)], "Canary", 0, None),
    ("rollbackTo serves only the named version",
     given(evaluation=evaluated(), previous=progressing(1, 1, 0), live=HEALTHY, rollback_to="v1"),
     [("v1", 100)], "RolledBack", None, "RollbackRequested"),
    ("removing rollbackTo starts the rollout over",
     given(evaluates=False, previous=RolloutStatus(state="RolledBack", candidate="v2", candidate_hash=HASH,
                                                   reason="RollbackRequested",
                                                   message="spec.rollbackTo: version 'v1' serves all traffic"),
           live=HEALTHY), [("v1", 90), ("v2", 10)], "Progressing", 0, None),
    ("a gate's rollback stays whatever its message says",
     given(evaluates=False, previous=RolloutStatus(state="RolledBack", candidate="v2", candidate_hash=HASH,
                                                   reason="Rollback", message="spec.rollbackTo: looks requested"),
           live=HEALTHY), [("v1", 100)], "RolledBack", None, None),
]


@pytest.mark.parametrize("name, rollout_input, routes, state, step, event", TABLE, ids=[row[0] for row in TABLE])
def test_the_rollout_decision(name, rollout_input, routes, state, step, event):
    decision = decide(rollout_input)
    assert decision.routes == routes
    assert decision.rollout.state == state
    assert decision.rollout.step == step
    assert (decision.event[0] if decision.event else None) == event


def test_an_evaluation_that_cannot_run_says_why():
    waiting = RolloutInput(**{**given().__dict__, "evaluation_waits_for": "the service answered with version 'v1'"})
    assert decide(waiting).rollout.message == ("evaluating version 'v2' before it gets traffic; not done yet: "
                                               "the service answered with version 'v1'")


def test_a_step_counts_only_its_own_requests():
    decision = decide(given(evaluation=evaluated(), previous=progressing(0, 20, 950), live=HEALTHY))
    assert decision.rollout.step_requests == 50
    assert decision.rollout.message == "50/100 requests"


def test_a_restarted_runtime_counts_from_zero():
    live = LiveFacts(candidate_requests=60, candidate_safety=1.0, latency_p99_ms=300)
    decision = decide(given(evaluation=evaluated(), previous=progressing(0, 20, 5000), live=live))
    assert decision.rollout.requests_at_step_start == 0 and decision.rollout.step_requests == 60


def test_a_new_step_starts_now_from_the_current_counter():
    decision = decide(given(evaluation=evaluated(), previous=progressing(0, 20, 0), live=HEALTHY))
    assert decision.rollout.step_started_at == "2026-05-01T12:00:00Z"
    assert decision.rollout.requests_at_step_start == 1000 and decision.rollout.step_requests == 0


def test_a_rollback_names_the_failed_gate():
    decision = decide(given(evaluation=evaluated(), previous=progressing(1, 1, 0),
                            live=LiveFacts(candidate_requests=50, candidate_safety=0.8, latency_p99_ms=300)))
    assert decision.rollout.message == "version 'v2' rolled back at step 1: safety 0.8 is not at least 0.95"
    assert decision.history == "RolledBack"


def test_gates_are_shaped_like_analysis_run_results():
    decision = decide(given(evaluation=evaluated(), previous=progressing(0, 5, 0),
                            live=LiveFacts(candidate_requests=10, candidate_safety=0.99)))
    assert [g.wire() for g in decision.rollout.gates] == [
        {"metric": "evaluationScore", "value": 0.8, "threshold": 0.6, "phase": "Successful",
         "message": "evaluationScore 0.8 is at least 0.6"},
        {"metric": "evaluationSafety", "value": 1.0, "threshold": 0.95, "phase": "Successful",
         "message": "evaluationSafety 1 is at least 0.95"},
        {"metric": "safety", "value": 0.99, "threshold": 0.95, "phase": "Successful",
         "message": "safety 0.99 is at least 0.95"},
        {"metric": "latencyP99Ms", "threshold": 800.0, "phase": "Inconclusive",
         "message": "no latencyP99Ms measured yet"}]


@pytest.mark.parametrize("value, threshold, minimum, phase", [
    (0.9, 0.9, True, "Successful"), (0.89, 0.9, True, "Failed"), (10, 10, False, "Successful"),
    (10.5, 10, False, "Failed"), (None, 1, True, "Inconclusive"),
])
def test_a_gate_compares_with_its_bound(value, threshold, minimum, phase):
    assert gate("m", value, threshold, minimum).phase == phase


@pytest.mark.parametrize("rollout_input, action", [
    (given(canary=None), Action.SERVE_STABLE),
    (given(), Action.EVALUATE),
    (given(evaluation=evaluated(score=0.4)), Action.REJECT),
    (given(evaluation=evaluated(), previous=progressing(0, 5, 0), live=HEALTHY), Action.HOLD),
    (given(evaluation=evaluated(), previous=progressing(0, 20, 0), live=HEALTHY), Action.STEP),
    (given(evaluation=evaluated(), previous=progressing(1, 20, 0), live=HEALTHY), Action.PROMOTE),
    (given(evaluation=evaluated(), previous=progressing(0, 1, 0), live=LiveFacts(candidate_safety=0.5)),
     Action.ROLLBACK),
    (given(rollback_to="v1"), Action.ROLLBACK_REQUESTED),
    (given(previous=progressing(1, 20, 0, state="Promoted")), Action.KEEP),
])
def test_the_decision_is_a_typed_action_recorded_as_the_rollout_reason(rollout_input, action):
    decision = decide(rollout_input)
    assert decision.action is action
    assert decision.rollout.reason == (action.value if action is not Action.KEEP else None)


def test_a_requested_rollback_is_announced_once_per_target():
    first = decide(given(rollback_to="v1", previous=progressing(0, 1, 0)))
    again = decide(RolloutInput(**{**given(rollback_to="v1").__dict__, "previous": first.rollout,
                                   "previous_stable": "v1"}))
    other = decide(RolloutInput(**{**given(rollback_to="v2").__dict__, "previous": first.rollout,
                                   "previous_stable": "v1"}))
    assert first.event[0] == "RollbackRequested" and again.event is None and other.event[0] == "RollbackRequested"
