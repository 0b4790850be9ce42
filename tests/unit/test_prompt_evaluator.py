"""PromptRelease evaluation outside the reconcile pass: the bounded worker, bounded reads from the tenant's
service, scoring in a child process under a time limit, and the pass's decision to start an attempt."""

from __future__ import annotations

import asyncio
import json
import time
from contextlib import asynccontextmanager
from datetime import datetime, timezone

import pytest
from aiohttp import web

from llmops_operator.api.v1alpha1 import PromptRelease
from local_http import local_server
from llmops_operator.api.v1alpha1.promptrelease import EvaluationExample, EvaluationResult, PromptDrift
from llmops_operator.builders.prompts import evaluation_token
from llmops_operator.backends.prompt_evaluation import (
    MAX_RESPONSE_BYTES, Endpoint, EvaluationUnavailable, ScoringFailed, run_examples, score_outputs,
)
from llmops_operator.controllers.prompt_evaluator import AttemptFailed, EvaluationWorker, Finished
from llmops_operator.controllers.promptrelease import PromptReleaseReconciler, evaluation_facts
from llmops_operator.core.contract import parse
from llmops_operator.entrypoints.prompt_scoring import score
from llmops_operator.scoring.prompt_evaluation import (
    MAX_DATASET_BYTES, MAX_DATASET_EXAMPLES, ROUGE_CHARS, DatasetTooLarge, Output, example_score, parse_dataset,
)
from llmops_operator.status.promptrelease import PromptFacts, candidate_hash, pass_decision, release_observation

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=timezone.utc)


def release(status: dict | None = None) -> PromptRelease:
    body = {"apiVersion": "llmops.dev/v1alpha1", "kind": "PromptRelease",
            "metadata": {"name": "chat", "namespace": "ml", "uid": "u-1"},
            "spec": {"target": {"name": "svc"},
                     "versions": [{"name": "v1", "template": "A: {{ q }}"}, {"name": "v2", "template": "B: {{ q }}"}],
                     "rollout": {"stable": "v1", "canary": {"version": "v2", "steps": [{"weight": 10}]}},
                     "evaluation": {"examples": [{"variables": {"q": "2+2?"}, "contains": "4"}]}}}
    if status is not None:
        body["status"] = status
    return parse(PromptRelease, body)


def finished() -> Finished:
    return Finished(EvaluationResult(version="v2", hash="h", score=1.0, safety=1.0, examples=1), PromptDrift())


# ----- the dataset and scoring are bounded ----------------------------------------------------------

def test_an_oversize_dataset_is_refused_before_any_line_is_parsed():
    line = '{"contains": "x"}\n'
    started = time.process_time()  # CPU time: the waits for a core on a busy machine are not work
    with pytest.raises(DatasetTooLarge, match=r"^spec.evaluation.dataset: ConfigMap 'big' key 'e.jsonl': holds "
                                              r"52428800 bytes or more, above the 1048576 bytes"):
        parse_dataset("x" * 50 * 1024 * 1024, "spec.evaluation.dataset: ConfigMap 'big' key 'e.jsonl'")
    assert time.process_time() - started < 0.5
    with pytest.raises(DatasetTooLarge, match=f"holds {MAX_DATASET_EXAMPLES + 1} examples, more than the "
                                              f"{MAX_DATASET_EXAMPLES}"):
        parse_dataset(line * (MAX_DATASET_EXAMPLES + 1), "where")
    assert len(parse_dataset(line * MAX_DATASET_EXAMPLES, "where")) == MAX_DATASET_EXAMPLES
    with pytest.raises(DatasetTooLarge, match="bytes or more"):
        parse_dataset("é" * (MAX_DATASET_BYTES // 2 + 1), "where")  # the bound is in bytes, not characters


def test_rouge_l_compares_a_bounded_prefix():
    long_words = " ".join(f"w{i}" for i in range(20_000))
    started = time.process_time()
    score_of = example_score(EvaluationExample(expected=long_words[:16_000]), Output(long_words), "rougeL")
    assert time.process_time() - started < 2 and score_of == pytest.approx(1.0)
    assert len(long_words[:ROUGE_CHARS].split()) < 1000


# ----- reads from the tenant's service are bounded --------------------------------------------------

@asynccontextmanager
async def service(answer):
    """A hostile or slow stand-in for the tenant's service (the thing these bounds protect against)."""
    app = web.Application()
    app.router.add_post("/v1/models/svc:predict", answer)
    async with local_server(app) as url:
        yield Endpoint(url=url, model="svc")


async def test_a_huge_answer_is_cut_off_not_buffered():
    async def huge(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        await response.write(b'{"predictions": [{"version": "v2", "text": "')
        for _ in range(300):  # 300 MiB if it were all read
            await response.write(b"x" * (1024 * 1024))
        await response.write(b'"}]}')
        return response

    async with service(huge) as endpoint:
        started = time.perf_counter()
        with pytest.raises(EvaluationUnavailable, match=rf"examples\[0\]: POST .*: the answer: the body is longer "
                                                        rf"than the {MAX_RESPONSE_BYTES} bytes"):
            await run_examples(endpoint, "v2", [EvaluationExample()])
        assert time.perf_counter() - started < 10


async def test_every_call_has_a_time_limit_and_an_error_body_is_cut():
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(3)  # the server's shutdown waits for it
        return web.json_response({})

    async def failing(request: web.Request) -> web.Response:
        return web.Response(status=500, text="e" * 10_000_000)

    async with service(slow) as endpoint:
        started = time.perf_counter()
        with pytest.raises(EvaluationUnavailable, match=r"no answer within the call's time limit \(0.5s\)"):
            await run_examples(endpoint, "v2", [EvaluationExample()], call_timeout_s=0.5)
        assert time.perf_counter() - started < 5
    async with service(failing) as endpoint:
        with pytest.raises(EvaluationUnavailable) as err:
            await run_examples(endpoint, "v2", [EvaluationExample()])
        assert "HTTP 500" in str(err.value) and len(str(err.value)) < 600


# ----- scoring runs in a child process under a time limit --------------------------------------------

def scoring_request(**changes) -> dict:
    request = {"version": "v2", "stable": "v1", "hash": "h", "metric": "rougeL", "evaluatedAt": "t",
               "examples": [{"contains": "4"}, {"regex": r"^\d"}], "policy": None,
               "outputs": [{"text": "it is 4", "outcome": "allowed"}, {"text": "x", "outcome": "allowed"}],
               "baseline": [{"text": "four", "outcome": "allowed"}, {"text": "y", "outcome": "allowed"}]}
    return {**request, **changes}


async def test_the_scoring_process_answers_as_the_scoring_maths_does():
    answer = await score_outputs(scoring_request(), timeout_s=60)
    assert answer == score(scoring_request())
    assert answer["evaluation"]["score"] == 0.5 and answer["evaluation"]["examples"] == 2


async def test_a_backtracking_regex_is_stopped_and_the_loop_keeps_answering():
    request = scoring_request(examples=[{"regex": r"(\w+\s?)+!!"}],
                              outputs=[{"text": "ab " * 40, "outcome": "allowed"}],
                              baseline=[{"text": "y", "outcome": "allowed"}])
    gaps, stop = [], asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not stop.is_set():
            await asyncio.sleep(0.05)
            gaps.append(time.perf_counter() - last)
            last = time.perf_counter()

    ticking = asyncio.create_task(ticker())
    started = time.perf_counter()
    with pytest.raises(ScoringFailed, match="took longer than 3s and was stopped"):
        await score_outputs(request, timeout_s=3)
    stop.set()
    await ticking
    assert time.perf_counter() - started < 10 and max(gaps) < 0.5


# ----- the worker -----------------------------------------------------------------------------------

async def test_the_worker_runs_one_attempt_per_key_and_at_most_max_running_at_once():
    worker, release_gate, done = EvaluationWorker(max_running=1), asyncio.Event(), []

    async def held() -> Finished:
        await release_gate.wait()
        return finished()

    assert worker.start(("u", "a"), held, lambda: done.append("a"))
    assert worker.start(("u", "b"), held, lambda: done.append("b"))
    assert not worker.start(("u", "a"), held, lambda: done.append("again"))
    await asyncio.sleep(0.05)
    assert worker.progress(("u", "a")).running and not worker.progress(("u", "a")).queued
    assert worker.progress(("u", "b")).queued
    release_gate.set()
    for _ in range(100):
        if len(done) == 2:
            break
        await asyncio.sleep(0.01)
    assert sorted(done) == ["a", "b"]
    assert worker.progress(("u", "a")).finished == finished() and not worker.progress(("u", "a")).may_start


async def test_an_attempt_past_its_budget_fails_and_the_next_waits_for_a_backoff():
    now = [0.0]
    worker, done = EvaluationWorker(budget_s=0.2, clock=lambda: now[0]), asyncio.Event()

    async def forever() -> Finished:
        await asyncio.sleep(60)
        raise AssertionError("not reached")

    worker.start(("u", "h"), forever, done.set)
    await asyncio.wait_for(done.wait(), 5)
    failed = worker.progress(("u", "h"))
    assert failed.failure.reason == "TimedOut" and "budget of 0.2s" in failed.failure.message
    assert not failed.may_start and not worker.start(("u", "h"), forever, done.set)
    now[0] += 15
    assert worker.progress(("u", "h")).may_start


async def test_a_failure_names_its_reason_for_the_condition():
    worker, done = EvaluationWorker(), asyncio.Event()

    async def refused() -> Finished:
        raise AttemptFailed("DatasetTooLarge", "spec.evaluation.dataset: too big")

    worker.start(("u", "h"), refused, done.set)
    await asyncio.wait_for(done.wait(), 5)
    facts = PromptFacts(**evaluation_facts(worker.progress(("u", "h")), 2))
    seen = release_observation(release(), [], facts, NOW)
    evaluated = next(c for c in seen.conditions if c.type == "Evaluated")
    assert (evaluated.status, evaluated.reason, evaluated.message) == (
        "False", "DatasetTooLarge", "spec.evaluation.dataset: too big")


# ----- one decision per pass ------------------------------------------------------------------------

def evaluating_status() -> dict:
    return {"rollout": {"state": "Evaluating", "candidate": "v2", "candidateHash": candidate_hash(release())},
            "stable": {"version": "v1", "configMap": "x", "weight": 100}}


@pytest.mark.parametrize("status, facts, starts", [
    (evaluating_status(), PromptFacts(target_url="http://svc", evaluation_may_start=True), True),
    (None, PromptFacts(target_url="http://svc", evaluation_may_start=True), False),  # routing not out yet
    (evaluating_status(), PromptFacts(evaluation_may_start=True), False),  # the target has no URL
    (evaluating_status(), PromptFacts(target_url="http://svc", evaluation_may_start=False), False),  # running
])
def test_an_attempt_starts_once_the_candidate_is_routed_at_weight_zero(status, facts, starts):
    decided = pass_decision(release(status), facts, NOW)
    assert decided.rollout.rollout.state == "Evaluating"
    assert decided.evaluate_at == ("http://svc" if starts else None)


def test_children_and_status_follow_the_pass_s_decision_not_the_last_status():
    obj = release(evaluating_status())  # the last status routed v2 at weight 0
    result = EvaluationResult(version="v2", hash=candidate_hash(obj), score=1.0, safety=1.0, examples=1)
    facts = PromptFacts(evaluation=result, target_url="http://svc")
    rec = PromptReleaseReconciler()
    decided = rec.decide(obj, facts, _ctx())
    ctx = _ctx(decision=decided)
    live = rec.children(obj, ctx, {})
    routing = json.loads(live[-1]["data"]["routing.json"])
    assert [(r["version"], r["weight"]) for r in routing["routes"]] == decided.rollout.routes != [("v1", 100),
                                                                                                ("v2", 0)]
    seen = rec.status(obj, live, facts, ctx, {})
    assert seen.fields["rollout"]["reason"] == decided.rollout.action.value
    assert seen.fields["stable"]["version"] == decided.rollout.routes[0][0]


def _ctx(**fields):
    from llmops_operator.core.contract import Context

    return Context(**{**Context.default().__dict__, "now": NOW, **fields})


def test_the_routing_holds_the_evaluation_token_only_while_the_candidate_is_evaluated():
    obj = release(evaluating_status())
    rec, ctx = PromptReleaseReconciler(), _ctx()
    token = evaluation_token(obj, ctx.settings.evaluation_key)

    def routing_token(facts: PromptFacts) -> str | None:
        routed = rec.children(obj, _ctx(settings=ctx.settings, decision=rec.decide(obj, facts, ctx)), {})[-1]
        return json.loads(routed["data"]["routing.json"]).get("evaluationToken")

    assert token and routing_token(PromptFacts()) == token
    result = EvaluationResult(version="v2", hash=candidate_hash(obj), score=1.0, safety=1.0, examples=1)
    assert routing_token(PromptFacts(evaluation=result)) is None
    assert evaluation_token(obj, "another key") != token
    offline = parse(PromptRelease, {**obj.model_dump(by_alias=True, exclude_none=True, mode="json"),
                                    "metadata": {"name": "chat", "namespace": "ml"}})
    assert evaluation_token(offline, ctx.settings.evaluation_key) is None  # `llmops render` shows no token
