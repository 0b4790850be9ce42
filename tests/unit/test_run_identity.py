"""A run's identity comes from the user's spec and explicit inputs; a finished run stays finished."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import yaml

from llmops_operator.api.v1alpha1 import FineTune, TrainingJob, VectorIndex
from llmops_operator.builders.labels import OBSERVE_ONLY
from llmops_operator.controllers.finetune import FineTuneReconciler
from llmops_operator.controllers.trainingjob import TrainingJobReconciler
from llmops_operator.controllers.vectorindex import VectorIndexReconciler
from llmops_operator.core.contract import Context, parse
from llmops_operator.core.settings import Settings

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=timezone.utc)


def ctx(image: str = "registry.example/llmops:1.0") -> Context:
    settings = Settings(runtime_image=image, ray_version="2.60.0")
    return Context(settings=settings, catalog=settings.catalog, now=NOW)


def body(kind: str, spec: dict, status: dict | None = None, generation: int = 1) -> dict:
    doc = {"apiVersion": "llmops.dev/v1alpha1", "kind": kind,
           "metadata": {"name": "run", "namespace": "ml", "generation": generation}, "spec": spec}
    if status is not None:
        doc["status"] = status
    return doc


TJ_SPEC = {"dataset": {"uri": "pvc://data/corpus.jsonl"}, "checkpoint": {"uri": "pvc://models/tj"}}
FT_SPEC = {"baseModel": {"uri": "pvc://models/base"}, "dataset": {"uri": "pvc://data/sft.jsonl"},
           "output": {"uri": "pvc://models/ft"},
           "evaluation": {"dataset": {"uri": "pvc://data/eval.jsonl"}, "metrics": ["rougeL"],
                          "guardrailRef": {"name": "policy"}},
           "gates": {"minScore": 0.3, "minSafety": 0.9}}


def guardrail(threshold: float) -> dict:
    return {"apiVersion": "llmops.dev/v1alpha1", "kind": "Guardrail", "metadata": {"name": "policy", "namespace": "ml"},
            "spec": {"checks": [{"name": "tox", "type": "toxicity", "threshold": threshold}]},
            "status": {"policyConfigMap": "policy-grail-policy-abc"}}


def tj_children(spec: dict = TJ_SPEC, status: dict | None = None, context: Context | None = None,
                generation: int = 1) -> list[dict]:
    obj = parse(TrainingJob, body("TrainingJob", spec, status, generation))
    return TrainingJobReconciler().children(obj, context or ctx(), {})


def ft_children(spec: dict = FT_SPEC, status: dict | None = None, threshold: float = 0.7,
                context: Context | None = None) -> list[dict]:
    refs = {("Guardrail", "policy"): guardrail(threshold)}
    return FineTuneReconciler().children(parse(FineTune, body("FineTune", spec, status)), context or ctx(), refs)


def rayjob_name(children: list[dict]) -> str:
    return next(c for c in children if c["kind"] == "RayJob")["metadata"]["name"]


def test_a_new_default_image_or_a_guardrail_edit_is_not_a_new_run():
    assert rayjob_name(tj_children(context=ctx("registry.example/llmops:2.0"))) == rayjob_name(tj_children())
    assert rayjob_name(ft_children(context=ctx("registry.example/llmops:2.0"))) == rayjob_name(ft_children())
    edited = ft_children(threshold=0.2)
    assert rayjob_name(edited) == rayjob_name(ft_children())
    # the run still evaluates with the policy as it is when it starts
    env = yaml.safe_load(next(c for c in edited if c["kind"] == "RayJob")["spec"]["runtimeEnvYAML"])["env_vars"]
    assert json.loads(env["LLMOPS_RUN_CONFIG"])["evaluation"]["guardrailPolicy"]["checks"][0]["threshold"] == 0.2


def test_what_the_user_states_is_part_of_the_run():
    assert rayjob_name(tj_children({**TJ_SPEC, "image": "registry.example/custom:1"})) != rayjob_name(tj_children())
    other_base = {**FT_SPEC, "baseModel": {"uri": "pvc://models/other"}}
    assert rayjob_name(ft_children(other_base)) != rayjob_name(ft_children())
    other_guardrail = {**FT_SPEC, "evaluation": {**FT_SPEC["evaluation"], "guardrailRef": {"name": "strict"}}}
    refs = {("Guardrail", "strict"): {**guardrail(0.7), "metadata": {"name": "strict", "namespace": "ml"}}}
    renamed = FineTuneReconciler().children(parse(FineTune, body("FineTune", other_guardrail)), ctx(), refs)
    assert rayjob_name(renamed) != rayjob_name(ft_children())


def test_ingest_jobs_are_named_without_the_default_image():
    spec = {"milvus": {"uri": "pvc://vectors/milvus.db"}, "embedding": {"model": "builtin:minilm", "dimension": 384},
            "source": {"pvc": {"claimName": "docs", "path": "guides"}}}
    obj = parse(VectorIndex, body("VectorIndex", spec))
    names = [[c["metadata"]["name"] for c in VectorIndexReconciler().children(obj, ctx(image), {})
              if c["kind"] == "Job"] for image in ("registry.example/llmops:1.0", "registry.example/llmops:2.0")]
    assert names[0] == names[1] and len(names[0]) == 1


def finished_status(name: str, succeeded: str = "True", **fields) -> dict:
    reason = "RayJobSucceeded" if succeeded == "True" else "DeadlineExceeded"
    at = "2026-05-01T10:15:00Z"
    return {"phase": "Succeeded" if succeeded == "True" else "Failed", "observedGeneration": 1,
            "conditions": [{"type": kind, "status": value, "reason": why, "lastTransitionTime": at}
                           for kind, value, why in [("Submitted", "True", "RayJobAccepted"),
                                                    ("Succeeded", succeeded, reason), ("Ready", succeeded, reason)]],
            "rayJob": {"name": name, "submissionId": f"ml-{name}", "jobStatus": "SUCCEEDED",
                       "deploymentStatus": "Complete"},
            "cost": {"currency": "USD", "hourlyRate": 1.0, "accrued": 0.25},
            "startTime": "2026-05-01T10:00:00Z", "completionTime": "2026-05-01T10:15:00Z", **fields}


def test_the_rayjob_of_a_finished_run_is_only_observed():
    name = rayjob_name(tj_children())
    for succeeded in ("True", "False"):
        rayjob = tj_children(status=finished_status(name, succeeded))[-1]
        assert rayjob["metadata"]["annotations"][OBSERVE_ONLY] == "true"
    running = finished_status(name, "Unknown")
    assert OBSERVE_ONLY not in tj_children(status=running)[-1]["metadata"]["annotations"]
    changed = tj_children({**TJ_SPEC, "training": {"epochs": 3}}, status=finished_status(name), generation=2)[-1]
    assert OBSERVE_ONLY not in changed["metadata"]["annotations"]  # a new run


def test_a_run_finished_under_an_older_name_is_final_while_the_spec_is_unchanged():
    legacy = finished_status("tj-0c7674d5")  # recorded before run names carried the kind and left out defaults
    assert tj_children(status=legacy)[-1]["metadata"]["annotations"][OBSERVE_ONLY] == "true"
    edited = tj_children({**TJ_SPEC, "training": {"epochs": 3}}, status=legacy, generation=2)
    assert OBSERVE_ONLY not in edited[-1]["metadata"]["annotations"]
    budget = tj_children({**TJ_SPEC, "budget": {"limit": 5}}, status=finished_status(rayjob_name(tj_children())),
                         generation=2)
    assert budget[-1]["metadata"]["annotations"][OBSERVE_ONLY] == "true"  # patched in place: still the same run


def test_a_finished_run_whose_rayjob_is_gone_keeps_its_status():
    name = rayjob_name(tj_children())
    obj = parse(TrainingJob, body("TrainingJob", TJ_SPEC, finished_status(name, progress={"step": 40})))
    live = [c for c in tj_children(status=finished_status(name)) if c["kind"] != "RayJob"]
    observation = TrainingJobReconciler().status(obj, live, None, ctx(), {})
    assert observation.phase == "Succeeded"
    assert {c.type: c.status for c in observation.conditions}["Ready"] == "True"
    assert observation.fields["rayJob"]["name"] == name and observation.fields["progress"] == {"step": 40, "epoch": 0}
    assert observation.fields["completionTime"] == "2026-05-01T10:15:00Z"


def ft_status(live_report: dict | None, previous_evaluation: dict | None = None, gone: bool = False):
    name = rayjob_name(ft_children())
    extra = {"evaluation": previous_evaluation} if previous_evaluation else {}
    obj = parse(FineTune, body("FineTune", FT_SPEC, finished_status(name, **extra)))
    refs = {("Guardrail", "policy"): guardrail(0.7)}
    live = FineTuneReconciler().children(obj, ctx(), refs)
    if live_report is not None:
        live[0] = {**live[0], "data": {"progress.json": json.dumps({"evaluation": live_report})}}
    if gone:
        live = [c for c in live if c["kind"] != "RayJob"]
    else:
        live[-1] = {**live[-1], "status": {"jobDeploymentStatus": "Complete", "jobStatus": "SUCCEEDED"}}
    return FineTuneReconciler().status(obj, live, None, ctx(), refs)


def test_the_gate_is_decided_by_the_operator_not_by_the_job():
    claimed = ft_status({"scores": {"rougeL": 0.1}, "safety": {"score": 0.99, "evaluated": 10},
                         "gate": "Passed", "gateMessage": "trust me"})
    assert claimed.phase == "GateFailed"
    assert claimed.fields["evaluation"]["gate"] == "Failed"
    assert "rougeL 0.1 is not at least 0.3" in claimed.fields["evaluation"]["gateMessage"]
    unsafe = ft_status({"scores": {"rougeL": 0.5}, "safety": {"score": 0.5, "evaluated": 10}, "gate": "Passed"})
    assert unsafe.phase == "GateFailed"
    passed = ft_status({"scores": {"rougeL": 0.5}, "safety": {"score": 0.95, "evaluated": 10}, "gate": "Failed"})
    assert passed.phase == "Succeeded" and passed.fields["evaluation"]["primaryMetric"] == "rougeL"


def test_a_finished_fine_tune_keeps_its_evaluation_when_report_and_rayjob_are_gone():
    previous = {"scores": {"rougeL": 0.5}, "safety": {"score": 0.95, "evaluated": 10}, "gate": "Passed"}
    observation = ft_status(None, previous, gone=True)
    assert observation.phase == "Succeeded"
    assert observation.fields["evaluation"]["scores"] == {"rougeL": 0.5}
    assert observation.fields["evaluation"]["gate"] == "Passed"
