"""evaluation.lmEval's pure parts: the spec's bounds, the lm-eval task config a local task renders to, the checked
rows it reads, the reading of lm-eval's results, and the gates (runs on a real model are in
tests/integration/test_lm_eval_harness.py)."""

from __future__ import annotations

import json

import pytest

from llmops_operator.api.v1alpha1 import FineTune
from llmops_operator.builders.runconfig import finetune_run_config
from llmops_operator.core.contract import InvalidSpec, parse
from llmops_operator.entrypoints.harness import local_rows, local_task_config, task_scores
from llmops_operator.scoring.evaluation import lm_eval_checks
from llmops_operator.status.finetune import finetune_outcome, gated_evaluation

QUIZ = {"uri": "pvc://d/quiz.jsonl", "prompt": "Q: {question}\nA:", "choicesField": "choices"}
TASK = {"name": "quiz", "local": QUIZ, "gate": {"metric": "acc", "min": 0.5}}


def finetune(lm_eval, gates=None) -> FineTune:
    spec = {"dataset": {"uri": "pvc://d/t.jsonl"}, "baseModel": {"uri": "pvc://m/base"},
            "output": {"uri": "pvc://m/out"},
            "evaluation": {"dataset": {"uri": "pvc://d/e.jsonl"}, "lmEval": lm_eval}}
    if gates:
        spec["gates"] = gates
    return parse(FineTune, {"apiVersion": "llmops.dev/v1alpha1", "kind": "FineTune",
                            "metadata": {"name": "ft", "namespace": "ml"}, "spec": spec})


@pytest.mark.parametrize("lm_eval, field", [
    ({"tasks": []}, "tasks"),
    ({"tasks": [{"name": f"t{i}"} for i in range(17)]}, "tasks"),
    ({"tasks": [{"name": "quiz"}, {"name": "quiz"}]}, "more than once"),
    ({"tasks": [{"name": "../etc"}]}, "name"),
    ({"tasks": [TASK], "limit": 0}, "limit"),
    ({"tasks": [TASK], "timeoutSeconds": 100_000}, "timeoutSeconds"),
    ({"tasks": [{"name": "q", "local": {**QUIZ, "metrics": ["exact_match"]}}]}, "do not apply to outputType"),
    ({"tasks": [{"name": "q", "local": {**QUIZ, "choicesField": None}}]}, "choicesField"),
    ({"tasks": [{"name": "q", "local": {**QUIZ, "outputType": "generate_until"}}]}, "choicesField"),
    ({"tasks": [{"name": "q", "local": {**QUIZ, "prompt": "x" * 4001}}]}, "prompt"),
    ({"tasks": [{"name": "q", "local": {**QUIZ, "until": ["x" * 65]}}]}, "until"),
    ({"tasks": [{**TASK, "gate": {"metric": "acc"}}]}, "exactly one of gate.min and gate.max"),
    ({"tasks": [{**TASK, "gate": {"metric": "acc", "min": 0.1, "max": 0.9}}]}, "exactly one"),
    ({"tasks": [{**TASK, "gate": {"metric": "exact_match", "min": 0.1}}]}, "not one of the task's metrics"),
    ({"tasks": [{**TASK, "numFewshot": 26}]}, "numFewshot"),
])
def test_the_lm_eval_spec_is_bounded(lm_eval, field):
    with pytest.raises(InvalidSpec, match=field):
        finetune(lm_eval)


def test_the_run_config_carries_the_tasks():
    config = finetune_run_config(finetune({"tasks": [TASK, {"name": "arc_easy", "numFewshot": 5}]}), "file:///b")
    lm_eval = config["evaluation"]["lmEval"]
    assert lm_eval["limit"] == 100 and lm_eval["timeoutSeconds"] == 1800 and lm_eval["batchSize"] == 8
    assert lm_eval["tasks"][0]["local"]["outputType"] == "multiple_choice"
    assert lm_eval["tasks"][1] == {"name": "arc_easy", "numFewshot": 5}


def test_a_local_task_renders_to_a_config_of_columns_without_templates():
    config = local_task_config("quiz", QUIZ, "/w/0.jsonl", "/w/cache", 2)
    assert config["dataset_path"] == "json" and config["dataset_kwargs"]["data_files"] == {"test": "/w/0.jsonl"}
    assert (config["doc_to_text"], config["doc_to_choice"], config["doc_to_target"]) == ("input", "choices", "target")
    assert [m["metric"] for m in config["metric_list"]] == ["acc", "acc_norm"] and config["fewshot_split"] == "test"
    generate = local_task_config("g", {**QUIZ, "outputType": "generate_until", "until": ["."]}, "/f", "/c", 0)
    assert generate["generation_kwargs"] == {"until": ["."], "do_sample": False, "max_gen_toks": 32}
    assert "fewshot_split" not in generate and "doc_to_choice" not in generate
    rolling = local_task_config("l", {**QUIZ, "outputType": "loglikelihood"}, "/f", "/c", 0)
    assert [(m["metric"], m["aggregation"], m["higher_is_better"]) for m in rolling["metric_list"]] == [
        ("perplexity", "perplexity", False), ("acc", "mean", True)]


def write(tmp_path, *records) -> dict:
    path = tmp_path / "quiz.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return {**QUIZ, "uri": f"file://{path}"}


def test_local_rows_fill_the_prompt_and_resolve_the_answer(tmp_path):
    local = write(tmp_path, {"question": "Sky?", "choices": ["blue", "loud"], "answer": "blue"},
                  {"question": "Two?", "choices": ["1", "2"], "answer": 1}, {"question": "cut", "choices": []})
    assert local_rows(local, 2, "t") == [{"input": "Q: Sky?\nA:", "choices": ["blue", "loud"], "target": 0},
                                         {"input": "Q: Two?\nA:", "choices": ["1", "2"], "target": 1}]
    generated = local_rows({**write(tmp_path, {"question": "Sky?", "answer": "blue"}), "outputType": "generate_until",
                            "choicesField": None}, 10, "t")
    assert generated == [{"input": "Q: Sky?\nA:", "target": "blue"}]


@pytest.mark.parametrize("record, message", [
    ({"choices": ["a", "b"], "answer": 0}, "record 0 has no field 'question' \\(named in prompt\\)"),
    ({"question": "q", "choices": "a b", "answer": 0}, "record 0 field 'choices' \\(choicesField\\)"),
    ({"question": "q", "choices": ["a", ""], "answer": 0}, "record 0 field 'choices' \\(choicesField\\)"),
    ({"question": "q", "choices": ["a", "b"], "answer": 2}, "record 0 field 'answer' \\(targetField\\)"),
    ({"question": "q", "choices": ["a", "b"], "answer": True}, "record 0 field 'answer' \\(targetField\\)"),
    ({"question": "q", "choices": ["a", "b"], "answer": "c"}, "record 0 field 'answer' \\(targetField\\)"),
])
def test_a_malformed_record_is_named(tmp_path, record, message):
    with pytest.raises(ValueError, match=f"evaluation.lmEval task 'quiz': {message}"):
        local_rows(write(tmp_path, record), 10, "evaluation.lmEval task 'quiz'")


def test_lm_eval_results_become_status_scores():
    entry = {"alias": "quiz", "acc,none": 0.5, "acc_stderr,none": 0.25, "acc_norm,none": float("nan"),
             "exact_match,strict-match": 1, "bleu_stderr,none": "N/A", "sample_len": 4}
    assert task_scores(entry) == {"acc": 0.5, "acc_stderr": 0.25, "exact_match/strict-match": 1.0}


def report(lm_eval: dict, scores=None) -> dict:
    return {"data": {"progress.json": json.dumps({"evaluation": {"scores": scores or {"perplexity": 3.0},
                                                                 "lmEval": lm_eval}})}}


def test_each_task_gate_is_checked_against_what_was_measured():
    gates = [("quiz", "acc", 0.5, None), ("wiki", "perplexity", None, 20.0), ("arc", "acc", 0.3, None)]
    checks = lm_eval_checks(gates, {"quiz": {"scores": {"acc": 0.25}}, "wiki": {"scores": {"perplexity": 12.0}},
                                    "arc": {"error": "ConnectionError: Couldn't reach 'allenai/ai2_arc'"}})
    assert checks == [("lmEval quiz acc", "lmEval quiz acc 0.25 is below 0.5"), ("lmEval wiki perplexity", None),
                      ("lmEval arc acc", "lmEval arc acc was not measured: ConnectionError: Couldn't reach "
                                         "'allenai/ai2_arc'")]
    assert lm_eval_checks([("wiki", "perplexity", None, 10.0)], {"wiki": {"scores": {"perplexity": 12.0}}}) == [
        ("lmEval wiki perplexity", "lmEval wiki perplexity 12.0 is above 10.0")]


def test_the_operator_gates_on_the_reported_task_scores():
    ft = finetune({"tasks": [TASK, {"name": "arc_easy"}]}, gates={"minScore": 5.0})
    failing = gated_evaluation(ft, report({"quiz": {"scores": {"acc": 0.25, "acc_stderr": 0.2}, "samples": 4},
                                           "arc_easy": {"error": "no hub"}}))
    assert failing.gate == "Failed" and failing.gate_message == "lmEval quiz acc 0.25 is below 0.5"
    assert failing.wire()["lmEval"]["quiz"] == {"scores": {"acc": 0.25, "acc_stderr": 0.2}, "samples": 4}
    passing = gated_evaluation(ft, report({"quiz": {"scores": {"acc": 0.75}}}))
    assert passing.gate == "Passed" and passing.gate_message == "passed perplexity and lmEval quiz acc"
    missing = gated_evaluation(ft, report({"quiz": {"error": "TimeoutError: lmEval.timeoutSeconds ran out"}}))
    assert missing.gate == "Failed" and "lmEval quiz acc was not measured: TimeoutError" in missing.gate_message


def test_a_task_error_shows_in_the_evaluated_condition():
    from llmops_operator.core.contract import Observation
    from llmops_operator.core import conditions as cond

    ft = finetune({"tasks": [{"name": "arc_easy"}, {"name": "quiz", "local": QUIZ}]})
    job = Observation(conditions=[cond.true("Succeeded", "Succeeded", "")], phase="Succeeded", fields={})
    outcome = finetune_outcome(ft, job, report({"arc_easy": {"error": "ConnectionError: no hub"},
                                                "quiz": {"scores": {"acc": 0.5}}}), {})
    evaluated = next(c for c in outcome.conditions if c.type == "Evaluated")
    assert evaluated.message == "perplexity=3.0, lmEval arc_easy: error ConnectionError: no hub, lmEval quiz: acc=0.5"
    assert outcome.phase == "Succeeded" and outcome.fields["evaluation"]["lmEval"]["arc_easy"]["error"]


def test_a_report_with_too_many_tasks_is_not_trusted():
    ft = finetune({"tasks": [TASK]})
    flood = {f"t{i}": {"scores": {"acc": 1.0}} for i in range(17)}
    assert gated_evaluation(ft, report(flood)) is None
