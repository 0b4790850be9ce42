"""evaluation.lmEval run by the real evaluation entrypoint with the real lm-eval package: the chat example's
multiple-choice quiz (local records, nothing fetched from a hub) on the tiny Llama-architecture model built from
the tiny-llama example's config, its scores folded into the FineTune's status by the operator's code, and its gate.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import yaml

pytest.importorskip("lm_eval")
pytest.importorskip("peft")

from llmops_operator.api.v1alpha1 import FineTune  # noqa: E402
from llmops_operator.builders.runconfig import finetune_run_config  # noqa: E402
from llmops_operator.core import conditions as cond  # noqa: E402
from llmops_operator.core.contract import Observation, parse  # noqa: E402
from llmops_operator.status.finetune import finetune_outcome  # noqa: E402

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[2] / "manifests/examples"
QUIZ = EXAMPLES / "data/lm-eval/tiny-quiz.jsonl"
QUIZ_SIZE = 8


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory) -> Path:
    """The tiny-llama TrainingJob example's model, freshly initialised and saved with the builtin tokenizer."""
    from llmops_operator.backends.models import build_model, load_tokenizer

    directory = tmp_path_factory.mktemp("tiny-llama")
    model_spec = yaml.safe_load((EXAMPLES / "trainingjob-llama.yaml").read_text())["spec"]["model"]
    tokenizer = load_tokenizer(model_spec["tokenizer"])
    build_model(model_spec, tokenizer.vocab_size).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def example_body(min_accuracy: float) -> dict:
    """The chat example with local URIs, its quiz gated on acc >= min_accuracy, and no Guardrail to resolve."""
    body = yaml.safe_load((EXAMPLES / "finetune.yaml").read_text())
    spec = body["spec"]
    spec["baseModel"] = {"uri": "file:///unused"}
    spec["evaluation"]["dataset"]["uri"] = str(EXAMPLES / "data/chat/tiny-chat-eval.jsonl")
    spec["evaluation"]["metrics"] = ["perplexity"]
    spec["evaluation"].pop("guardrailRef")
    spec.pop("gates")  # the untrained model's perplexity misses the example's bar: only the quiz's gate here
    [quiz] = spec["evaluation"]["lmEval"]["tasks"]
    quiz["local"]["uri"] = f"file://{QUIZ}"
    quiz["gate"] = {"metric": "acc", "min": min_accuracy}
    return body


def example_finetune(min_accuracy: float) -> FineTune:
    body = example_body(min_accuracy)
    return parse(FineTune, {**body, "metadata": {**body["metadata"], "namespace": "ml"}})


def status_of(ft: FineTune, evaluation: dict) -> Observation:
    job = Observation(conditions=[cond.true("Succeeded", "Succeeded", "the Ray job succeeded")], phase="Succeeded",
                      fields={})
    return finetune_outcome(ft, job, {"data": {"progress.json": json.dumps({"evaluation": evaluation})}}, {})


@pytest.fixture(scope="module")
def quiz_evaluation(tiny_llama) -> dict:
    """The evaluation entrypoint's report for the example, run on the tiny Llama as its output model."""
    from llmops_operator.entrypoints.evaluate import evaluate

    config = finetune_run_config(example_finetune(min_accuracy=1.5), "file:///unused")
    return evaluate({**config, "output": {"uri": f"file://{tiny_llama}"}})


@pytest.mark.timeout(600)
def test_the_quiz_scores_land_in_status_and_an_unreachable_gate_fails(quiz_evaluation):
    quiz = quiz_evaluation["lmEval"]["operator-quiz"]
    assert quiz["samples"] == QUIZ_SIZE and set(quiz["scores"]) == {"acc", "acc_stderr", "acc_norm", "acc_norm_stderr"}
    assert 0 <= quiz["scores"]["acc"] <= 1 and quiz["scores"]["acc"] * QUIZ_SIZE == pytest.approx(
        round(quiz["scores"]["acc"] * QUIZ_SIZE))  # a share of the eight questions

    failed = status_of(example_finetune(min_accuracy=1.5), quiz_evaluation)
    assert failed.phase == "GateFailed"
    assert failed.fields["evaluation"]["lmEval"]["operator-quiz"]["scores"]["acc"] == quiz["scores"]["acc"]
    gates = next(c for c in failed.conditions if c.type == "GatesPassed")
    assert gates.status == "False" and f"lmEval operator-quiz acc {round(quiz['scores']['acc'], 4)} is below 1.5" \
        in gates.message

    passed = status_of(example_finetune(min_accuracy=0.0), quiz_evaluation)
    assert passed.phase == "Succeeded" and "lmEval operator-quiz acc" in passed.fields["evaluation"]["gateMessage"]


@pytest.mark.timeout(600)
def test_the_operator_writes_the_reported_quiz_into_the_finetunes_status(kube, quiz_evaluation):
    """Through the API: the driver's report in the progress ConfigMap, the RayJob ending as KubeRay ends it, and one
    operator pass that folds the report into status (the CRD's status schema keeps the lmEval block)."""
    from kube_helpers import condition, reconcile_once, unwatched_namespace

    from llmops_operator.builders.progress import progress_target
    from llmops_operator.entrypoints.report import Reporter
    from llmops_operator.k8s.resources import resource_for

    namespace = unwatched_namespace(kube, "lmeval")
    ft = example_finetune(min_accuracy=1.5)
    kube.apply(example_body(min_accuracy=1.5), namespace)
    reconcile_once(kube, FineTune, namespace, ft.name)
    rayjob = resource_for("ray.io/v1", "RayJob")
    [job] = kube.list(rayjob, namespace)
    Reporter({**progress_target(ft), "namespace": namespace}).carry_on().update("evaluation", quiz_evaluation,
                                                                                force=True)
    kube.patch(rayjob, namespace, job["metadata"]["name"], {"status": {
        "jobDeploymentStatus": "Complete", "jobStatus": "SUCCEEDED",
        "startTime": "2026-05-01T10:00:00Z", "endTime": "2026-05-01T10:20:00Z"}}, subresource="status")

    status = reconcile_once(kube, FineTune, namespace, ft.name)["status"]
    assert status["phase"] == "GateFailed", status
    assert status["evaluation"]["lmEval"] == quiz_evaluation["lmEval"]
    assert "lmEval operator-quiz acc" in condition({"status": status}, "GatesPassed")["message"]
    assert "lmEval operator-quiz: acc=" in condition({"status": status}, "Evaluated")["message"]


def quiz_task(name: str, uri: str = f"file://{QUIZ}") -> dict:
    return {"name": name, "local": {"uri": uri, "outputType": "multiple_choice", "prompt": "Question: {question}\n"
                                    "Answer:", "choicesField": "choices", "targetField": "answer"}}


def loaded(directory: Path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(str(directory)).eval(), AutoTokenizer.from_pretrained(str(directory))


@pytest.mark.timeout(300)
def test_a_failing_task_reports_its_error_and_the_others_still_run(tiny_llama):
    from llmops_operator.entrypoints.harness import lm_eval_results

    model, tokenizer = loaded(tiny_llama)
    results = lm_eval_results({"tasks": [quiz_task("gone", "file:///nowhere/quiz.jsonl"), quiz_task("quiz")],
                               "limit": 4}, model, tokenizer)
    assert "error" in results["gone"] and "nowhere/quiz.jsonl" in results["gone"]["error"]
    assert results["quiz"]["samples"] == 4 and "acc" in results["quiz"]["scores"]


@pytest.mark.timeout(300)
def test_an_adapter_is_scored_on_its_base_without_merging(tiny_llama):
    """A fresh LoRA adapter changes nothing yet, so the peft model scores exactly as its base does."""
    from peft import LoraConfig, get_peft_model

    from llmops_operator.entrypoints.harness import lm_eval_results

    model, tokenizer = loaded(tiny_llama)
    spec = {"tasks": [quiz_task("quiz")], "limit": QUIZ_SIZE}
    base = lm_eval_results(spec, model, tokenizer)["quiz"]
    adapted = get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"])).eval()
    assert lm_eval_results(spec, adapted, tokenizer)["quiz"] == base


@pytest.mark.timeout(120)
def test_the_time_limit_stops_the_tasks_and_says_so(tiny_llama):
    from llmops_operator.entrypoints.harness import lm_eval_results

    model, tokenizer = loaded(tiny_llama)
    started = time.monotonic()
    results = lm_eval_results({"tasks": [quiz_task("first"), quiz_task("second")], "timeoutSeconds": 0.01},
                              model, tokenizer)
    assert time.monotonic() - started < 30
    for name in ("first", "second"):
        assert results[name]["error"].startswith("lmEval.timeoutSeconds (0.01 s) ran out"), results
