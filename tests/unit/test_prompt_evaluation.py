"""PromptRelease evaluation and rollout plumbing: scoring, the forced version, routes from status, events."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from pathlib import Path

import celpy
import pytest
import yaml

from llmops_operator.api.v1alpha1 import Guardrail, PromptRelease
from llmops_operator.builders.guardrail_policy import compile_policy
from llmops_operator.api.v1alpha1.promptrelease_evaluation import EvaluationExample
from llmops_operator.backends.prompt_evaluation import EvaluationUnavailable, output_of
from llmops_operator.core.contract import Context, parse
from llmops_operator.controllers.promptrelease import (
    PromptReleaseReconciler, live_facts, rollout_event, target_attached,
)
from llmops_operator.entrypoints.prompt_scoring import checked
from llmops_operator.guardrails.engine import Guardrail as GuardrailEngine
from llmops_operator.scoring.prompt_evaluation import (
    DatasetError, Output, example_score, length_drift, parse_dataset, summarise,
)
from llmops_operator.backends.prometheus import parse_exposition
from llmops_operator.builders.prompts import FORCE_HEADER, TOKEN_HEADER
from llmops_operator.servers.prompt_routing import PromptVersion, Route, Routing, allowed_parameters, pick_version
from llmops_operator.api.v1alpha1.promptrelease_evaluation import EvaluationResult
from llmops_operator.status.promptrelease import PromptFacts, candidate_hash, release_observation
from llmops_operator.status.rollout import LiveFacts

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 5, 1, 12, 0, tzinfo=timezone.utc)


def gated(status: dict | None = None, **spec) -> PromptRelease:
    body = {"apiVersion": "llmops.dev/v1alpha1", "kind": "PromptRelease",
            "metadata": {"name": "chat", "namespace": "ml", "uid": "u-1"},
            "spec": {"target": {"name": "svc"},
                     "versions": [{"name": "v1", "template": "Answer: {{ question }}"},
                                  {"name": "v2", "template": "Briefly: {{ question }}"}],
                     "rollout": {"stable": "v1", "canary": {"version": "v2", "steps": [
                         {"weight": 10, "minRequests": 5}, {"weight": 50, "minRequests": 5}]}},
                     "analysis": {"minEvaluationScore": 0.5, "minSafety": 0.9},
                     "evaluation": {"examples": [{"variables": {"question": "2+2?"}, "contains": "4"}]}, **spec}}
    if status is not None:
        body["status"] = status
    return parse(PromptRelease, body)


def example(**fields) -> EvaluationExample:
    return EvaluationExample.model_validate(fields)


# ----- scoring --------------------------------------------------------------------------------------

@pytest.mark.parametrize("fields, text, metric, score", [
    ({"expected": "Paris"}, "paris", "exactMatch", 1.0),
    ({"expected": "the capital is Paris"}, "Paris is the capital", "rougeL", 0.5),
    ({"contains": "PARIS"}, "It is Paris.", "rougeL", 1.0),
    ({"regex": r"\d+ km"}, "about 30 km", "rougeL", 1.0),
    ({"contains": "Paris", "regex": r"^\d"}, "Paris", "rougeL", 0.5),
    ({}, "anything", "rougeL", 1.0),
])
def test_an_example_scores_the_mean_of_its_checks(fields, text, metric, score):
    assert example_score(example(**fields), Output(text), metric) == pytest.approx(score)


def test_a_blocked_output_scores_zero_and_counts_as_unsafe():
    examples = [example(contains="4"), example(contains="4")]
    result = summarise("v2", "h", examples, [Output("4"), Output("", "blocked")], "rougeL", "t")
    assert (result.score, result.safety, result.examples) == (0.5, 0.5, 2)


def test_the_dataset_is_json_lines_and_a_bad_line_is_named():
    examples = parse_dataset('{"variables": {"q": "a"}, "expected": "b"}\n\n{"contains": "x"}\n', "cm key")
    assert [e.expected for e in examples] == ["b", None]
    with pytest.raises(DatasetError, match="cm key line 2: not JSON"):
        parse_dataset('{"contains": "x"}\n{nope\n', "cm key")
    with pytest.raises(DatasetError, match="cm key line 1: regex: Value error, not a regular expression"):
        parse_dataset('{"regex": "("}\n', "cm key")


def test_output_length_drift_needs_enough_answers():
    few = length_drift("v2", "v1", [Output("a")] * 3, [Output("b")] * 3)
    assert few.score is None and few.message.startswith("not enough traffic")
    same = length_drift("v2", "v1", [Output("x" * n) for n in (10, 20, 30, 40, 50)],
                        [Output("x" * n) for n in (10, 20, 30, 40, 50)])
    longer = length_drift("v2", "v1", [Output("x" * 500)] * 5, [Output("x" * n) for n in (10, 20, 30, 40, 50)])
    assert same.score == pytest.approx(0.0, abs=1e-6) and longer.score > 1 and longer.compared == "v2 vs v1"


def test_the_release_guardrail_checks_outputs():
    documents = yaml.safe_load_all((ROOT / "manifests/examples/guardrail.yaml").read_text())
    guardrail = parse(Guardrail, next(d for d in documents if d and d["kind"] == "Guardrail"))
    policy = GuardrailEngine.from_document(compile_policy(guardrail.spec))
    assert checked(policy, Output("write to jane.doe@example.com")).outcome == "redacted"
    assert checked(policy, Output("hello")).outcome == "allowed"
    assert checked(policy, Output("", "blocked")).outcome == "blocked"


# ----- the service's answers -----------------------------------------------------------------------

def test_a_prediction_of_another_version_is_not_scored():
    with pytest.raises(EvaluationUnavailable, match="answered with version 'v1', not 'v2'"):
        output_of({"version": "v1", "text": "x"}, "v2", 0)
    redacted = {"version": "v2", "text": "[EMAIL]", "verdict": {"input": {"outcome": "allowed"},
                                                               "output": {"outcome": "redacted"}}}
    assert output_of(redacted, "v2", 0) == Output("[EMAIL]", "redacted")
    assert output_of({"version": "v2", "blocked": True}, "v2", 0) == Output("", "blocked")


def test_the_force_header_picks_a_routed_version_even_at_weight_zero():
    routing = Routing(strategy="sticky", routes=(Route("v1", 100), Route("v2", 0)), sticky_key="x-user-id",
                      evaluation_token="t0k")
    assert pick_version(routing, {FORCE_HEADER: "v2", TOKEN_HEADER: "t0k", "x-user-id": "u"}) == "v2"
    assert pick_version(routing, {"X-LLMOps-Prompt-Version": "v2", "X-LLMOps-Evaluation-Token": "t0k"}) == "v2"
    assert pick_version(routing, {FORCE_HEADER: "v9", TOKEN_HEADER: "t0k", "x-user-id": "u"}) == "v1"


@pytest.mark.parametrize("headers, token", [
    ({FORCE_HEADER: "v2", "x-user-id": "u"}, "t0k"),  # no token
    ({FORCE_HEADER: "v2", TOKEN_HEADER: "guess", "x-user-id": "u"}, "t0k"),  # a wrong one
    ({FORCE_HEADER: "v2", TOKEN_HEADER: "t0k", "x-user-id": "u"}, None),  # nothing is being evaluated
])
def test_a_caller_without_the_evaluation_token_cannot_select_an_unvetted_version(headers, token):
    routing = Routing(strategy="sticky", routes=(Route("v1", 100), Route("v2", 0)), sticky_key="x-user-id",
                      evaluation_token=token)
    assert pick_version(routing, headers) == "v1"


def test_a_caller_cannot_raise_max_tokens_above_the_version_s():
    version = PromptVersion(version="v1", template="x", parameters={"maxTokens": 256, "temperature": 0.7})
    assert allowed_parameters({"maxTokens": 100_000, "temperature": 0.1}, version) == {
        "maxTokens": 256, "temperature": 0.1}
    assert allowed_parameters({"maxTokens": 8}, version) == {"maxTokens": 8}
    assert allowed_parameters({}, version) == {}


def test_live_facts_count_the_candidate_only():
    text = "\n".join([
        'llmops_guardrail_requests_total{version="v1",outcome="allowed"} 90',
        'llmops_guardrail_requests_total{version="v2",outcome="allowed"} 9',
        'llmops_guardrail_requests_total{version="v2",outcome="blocked"} 1'])
    facts = live_facts(parse_exposition(text), "v2", {"latency": {"p99Ms": 120.0}, "cost": {"per1kTokens": 0.02}})
    assert facts == LiveFacts(candidate_requests=10, candidate_safety=0.9, latency_p99_ms=120.0,
                              cost_per1k_tokens=0.02)


def test_the_target_must_name_this_release():
    obj = gated()
    assert target_attached(obj, None).reason == "TargetNotFound"
    other = {"spec": {"promptReleaseRef": {"name": "other"}}}
    mismatch = target_attached(obj, other)
    assert mismatch.reason == "TargetMismatch" and "'other', not 'chat'" in mismatch.message
    assert target_attached(obj, {"spec": {"promptReleaseRef": {"name": "chat"}}}).status == "True"


# ----- routes follow the last decision --------------------------------------------------------------

def routing_of(obj: PromptRelease) -> list:
    built = PromptReleaseReconciler().children(obj, Context.default(), {})
    return [(r["version"], r["weight"]) for r in json.loads(built[-1]["data"]["routing.json"])["routes"]]


def passes(obj: PromptRelease, facts: PromptFacts) -> dict:
    live = PromptReleaseReconciler().children(obj, Context.default(), {})
    seen = release_observation(obj, live, facts, NOW)
    return {"phase": seen.phase, "conditions": [], **seen.fields}


def test_a_candidate_walks_evaluation_steps_and_promotion():
    first = gated()
    assert routing_of(first) == [("v1", 100), ("v2", 0)]
    status = passes(first, PromptFacts())
    assert (status["phase"], status["rollout"]["state"]) == ("Evaluating", "Evaluating")

    evaluated = gated(status)
    result = EvaluationResult(version="v2", hash=candidate_hash(evaluated), score=1.0, safety=1.0, examples=1)
    status = passes(evaluated, PromptFacts(evaluation=result, live=LiveFacts(candidate_requests=1)))
    assert status["phase"] == "Canary" and status["canary"]["weight"] == 10
    assert status["evaluation"]["score"] == 1.0 and routing_of(gated(status)) == [("v1", 90), ("v2", 10)]

    healthy = LiveFacts(candidate_requests=20, candidate_safety=1.0)
    status = passes(gated(status), PromptFacts(live=healthy))
    assert status["rollout"]["step"] == 1 and routing_of(gated(status)) == [("v1", 50), ("v2", 50)]
    status = passes(gated(status), PromptFacts(live=LiveFacts(candidate_requests=40, candidate_safety=1.0)))
    assert status["rollout"]["state"] == "Promoted" and routing_of(gated(status)) == [("v2", 100)]
    assert status["stable"]["version"] == "v2" and "canary" not in status
    assert [h["event"] for h in status["history"]] == ["Released", "Promoted"]


def test_an_unsafe_candidate_is_rolled_back_and_stays_out():
    status = {"rollout": {"state": "Progressing", "candidate": "v2", "candidateHash": None, "step": 0,
                          "stepStartedAt": "2026-05-01T11:00:00Z", "requestsAtStepStart": 0}}
    status["rollout"]["candidateHash"] = candidate_hash(gated())
    status["evaluation"] = {"version": "v2", "hash": candidate_hash(gated()), "score": 1.0, "safety": 1.0}
    status["stable"] = {"version": "v1", "configMap": "x", "weight": 90}
    status["canary"] = {"version": "v2", "configMap": "y", "weight": 10}
    after = passes(gated(status), PromptFacts(live=LiveFacts(candidate_requests=3, candidate_safety=0.5)))
    assert after["phase"] == "RolledBack" and "canary" not in after
    assert after["rollout"]["message"] == "version 'v2' rolled back at step 0: safety 0.5 is not at least 0.9"
    assert after["history"][-1]["event"] == "RolledBack"
    assert routing_of(gated(after)) == [("v1", 100)]
    assert passes(gated(after), PromptFacts(live=LiveFacts(candidate_safety=1.0)))["phase"] == "RolledBack"


def test_rollback_to_changes_the_routes_without_waiting():
    obj = gated(rollbackTo="v1")
    assert routing_of(obj) == [("v1", 100)]
    status = passes(obj, PromptFacts())
    assert status["rollout"]["state"] == "RolledBack" and status["phase"] == "RolledBack"


def test_the_rollout_event_is_named_after_its_content():
    obj = gated()
    one = rollout_event(obj, "RolledBack", "why", "2026-05-01T12:00:00Z")
    again = rollout_event(obj, "RolledBack", "why", "2026-05-01T12:05:00Z")
    assert one["metadata"]["name"] == again["metadata"]["name"] and one["type"] == "Warning"
    assert one["involvedObject"] == {"apiVersion": "llmops.dev/v1alpha1", "kind": "PromptRelease", "name": "chat",
                                     "namespace": "ml", "uid": "u-1"}
    assert rollout_event(obj, "Promoted", "ok", "t")["type"] == "Normal"


def test_the_steps_rule_runs_in_cel():
    crd = yaml.safe_load((ROOT / "crds/llmops.dev_promptreleases.yaml").read_text())
    canary = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"][
        "rollout"]["properties"]["canary"]
    [rule] = canary["properties"]["steps"]["x-kubernetes-validations"]
    env = celpy.Environment()
    program = env.program(env.compile(rule["rule"]))
    for steps, valid in (([10, 50, 100], True), ([50, 10], False), ([100], True), ([10, 10], False)):
        value = celpy.json_to_cel([{"weight": w} for w in steps])
        assert bool(program.evaluate({"self": value})) is valid, steps
