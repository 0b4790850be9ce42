"""Argo CD health checks: the Lua the chart ships, run in a real Lua 5.1 (Argo CD's gopher-lua speaks 5.1)
against statuses the operator's own reducers produce, for every kind and state."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

helm = pytest.importorskip("helm_python")
lua51 = pytest.importorskip("lupa.lua51")

from llmops_operator.api.v1alpha1 import ALL_KINDS, BY_KIND  # noqa: E402
from llmops_operator.controllers.base import compose_status  # noqa: E402
from llmops_operator.status import kstatus  # noqa: E402
from llmops_operator.core.contract import Context, InvalidSpec, Observation, invalid_observation, parse  # noqa: E402
from llmops_operator.controllers.kinds import RECONCILER_CLASSES  # noqa: E402
from llmops_operator.core.settings import Settings  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "llmops-operator"
NOW = datetime(2026, 5, 1, 12, 0, tzinfo=timezone.utc)
KEY = "resource.customizations.health.llmops.dev_{}"


def ctx() -> Context:
    settings = Settings(runtime_image="registry.example/llmops:1.0")
    return Context(settings=settings, catalog=settings.catalog, now=NOW)


@pytest.fixture(scope="module")
def scripts() -> dict[str, str]:
    """The health checks exactly as the chart ships them, by kind."""
    rendered = helm.Chart.load(str(CHART)).render({"argocd": {"healthChecks": {"enabled": True}}},
                                                  name="llmops-operator", namespace="llmops-system")
    [text] = [t for path, t in rendered.items() if path.endswith("configmap-argocd-health.yaml")]
    data = yaml.safe_load(text)["data"]
    prefix = KEY.format("")
    return {key.removeprefix(prefix): script for key, script in data.items()}


def run_check(script: str, body: dict[str, Any]) -> dict[str, str]:
    """Run a health script the way Argo CD does: `obj` is the live object, the chunk returns hs."""
    lua = lua51.LuaRuntime(unpack_returned_tuples=True)
    lua.globals().obj = lua.table_from(json.loads(json.dumps(body)), recursive=True)
    hs = lua.execute(script)
    return {"status": hs["status"], "message": hs["message"]}


# ----- objects and their statuses, from the real reducers ----------------------------------------------------

def example(kind: str) -> dict[str, Any]:
    docs = yaml.safe_load_all((ROOT / "manifests" / "examples" / f"{kind.lower()}.yaml").read_text())
    body = next(d for d in docs if d and d["kind"] == kind)
    body["metadata"] |= {"namespace": "ml", "uid": f"uid-{kind.lower()}", "generation": 1}
    return body


def reconciler(kind: str):
    return next(cls() for cls in RECONCILER_CLASSES if cls.resource.info.kind == kind)


def with_spec(body: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**body, "spec": {**body["spec"], **changes}}


def live_body(body: dict[str, Any], observation: Observation, observed_generation: int | None = None) -> dict:
    """The object as Argo CD sees it once the loop wrote this observation."""
    generation = body["metadata"]["generation"]
    status = compose_status(body.get("status"), observation,
                            generation if observed_generation is None else observed_generation,
                            "2026-05-01T12:00:00Z")
    return json.loads(json.dumps({**body, "status": status}))


def observed(body: dict[str, Any], refs: dict | None = None,
             dress: Callable[[list[dict]], None] | None = None, facts: Any = None) -> dict[str, Any]:
    """Run the kind's children builder and reducer; `dress` writes the children's statuses as their controllers do."""
    kind = body["kind"]
    obj = parse(BY_KIND[kind], body)
    rec, refs = reconciler(kind), refs or {}
    live = json.loads(json.dumps(rec.children(obj, ctx(), refs) or []))  # None: nothing applied, as the loop does
    if dress is not None:
        dress(live)
    return live_body(body, rec.status(obj, live, facts, ctx(), refs))


def of_kind(live: list[dict], kind: str) -> list[dict]:
    return [c for c in live if c["kind"] == kind]


def rayjob_status(**status: Any) -> Callable[[list[dict]], None]:
    def dress(live: list[dict]) -> None:
        of_kind(live, "RayJob")[0]["status"] = status
    return dress


def report(data: dict[str, Any]) -> Callable[[list[dict]], None]:
    def dress(live: list[dict]) -> None:
        live[0]["data"] = {"progress.json": json.dumps(data)}
    return dress


def both(*dresses: Callable[[list[dict]], None]) -> Callable[[list[dict]], None]:
    def dress(live: list[dict]) -> None:
        for d in dresses:
            d(live)
    return dress


COMPLETE = {"succeeded": 1, "completionTime": "2026-05-01T11:00:00Z",
            "conditions": [{"type": "Complete", "status": "True", "reason": "CompletionsReached"}]}
FAILED = {"failed": 4, "conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                                       "message": "Job has reached the specified backoff limit"}]}


def jobs_status(*statuses: dict[str, Any]) -> Callable[[list[dict]], None]:
    def dress(live: list[dict]) -> None:
        for job, status in zip(of_kind(live, "Job"), statuses):
            job["status"] = status
    return dress


# TrainingJob ---------------------------------------------------------------------------------------------------

def training(dress=None, body=None):
    return observed(body or example("TrainingJob"), dress=dress)


def spent_training_job(action: str) -> dict[str, Any]:
    """A job whose last measured spend reached its budget: the next pass holds it (scoring/budget.py job_hold)."""
    body = with_spec(example("TrainingJob"), budget={"limit": 0.5, "action": action})
    body["status"] = {"phase": "Running", "observedGeneration": 1, "cost": {"currency": "USD", "accrued": 0.6},
                      "conditions": [{"type": "BudgetExceeded", "status": "True", "reason": "BudgetExceeded",
                                      "message": "spent", "lastTransitionTime": "2026-05-01T11:00:00Z"}]}
    start = (NOW - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return training(rayjob_status(jobDeploymentStatus="Running", jobStatus="RUNNING", startTime=start), body)


# FineTune ------------------------------------------------------------------------------------------------------

def plain_fine_tune() -> dict[str, Any]:
    """The example without references: its base model from a URI, no evaluation (which reads a Guardrail)."""
    body = example("FineTune")
    spec = {k: v for k, v in body["spec"].items() if k not in ("evaluation", "gates")}
    spec["baseModel"] = {"uri": "pvc://models/base"}
    return {**body, "spec": spec}


def fine_tune(dress=None, refs=None, body=None):
    return observed(body or plain_fine_tune(), refs=refs, dress=dress)


def gated_fine_tune(gate: str) -> dict[str, Any]:
    body = with_spec(plain_fine_tune(), evaluation={"dataset": {"uri": "pvc://data/eval.jsonl"}, "metrics": ["rougeL"]},
                     gates={"minScore": 0.3})
    score = 0.5 if gate == "Passed" else 0.1
    evaluation = {"scores": {"rougeL": score}, "primaryMetric": "rougeL", "gate": gate,
                  "gateMessage": f"rougeL {score} against minScore 0.3"}
    return fine_tune(both(rayjob_status(jobDeploymentStatus="Complete", jobStatus="SUCCEEDED"),
                          report({"evaluation": evaluation})), body=body)


def fine_tune_after(training_phase: str, ready: str) -> dict[str, Any]:
    body = with_spec(plain_fine_tune(), baseModel={"trainingJobRef": {"name": "tj"}})
    ref = {"status": {"phase": training_phase, "conditions": [{"type": "Ready", "status": ready}]}}
    return fine_tune(refs={("TrainingJob", "tj"): ref}, body=body)


# VectorIndex and FeatureView -----------------------------------------------------------------------------------

def vector_index(*job_statuses):
    return observed(example("VectorIndex"), dress=jobs_status(*job_statuses))


def feature_view(*job_statuses):
    return observed(example("FeatureView"), dress=jobs_status(*job_statuses))


# Guardrail -----------------------------------------------------------------------------------------------------

def guardrail(compiled: bool) -> dict[str, Any]:
    from llmops_operator.builders.guardrail_policy import policy_json
    from llmops_operator.guardrails.evaluation import evaluate_policy_json
    from llmops_operator.guardrails.selftest import selftest_policy_json
    from llmops_operator.status.guardrail import GuardrailFacts

    body = example("Guardrail")
    obj = parse(BY_KIND["Guardrail"], body)
    rec = reconciler("Guardrail")
    live = rec.children(obj, ctx(), {}) if compiled else []
    dataset = next(d for d in yaml.safe_load_all((ROOT / "manifests/examples/guardrail.yaml").read_text())
                   if d["kind"] == "ConfigMap")["data"]["prompts.jsonl"]
    facts = GuardrailFacts(selftest_policy_json(policy_json(obj.spec)),
                           evaluate_policy_json(policy_json(obj.spec), dataset, "", ""))
    return live_body(body, rec.status(obj, live, facts, ctx(), {}))


# InferenceService ----------------------------------------------------------------------------------------------

def plain_service() -> dict[str, Any]:
    body = example("InferenceService")
    spec = {k: v for k, v in body["spec"].items() if k not in ("guardrailRef", "promptReleaseRef")}
    spec["model"] = {"uri": "pvc://models/assistant"}
    return {**body, "spec": spec}


def kserve(ready: str, traffic: tuple[int, ...] = (100,)) -> Callable[[list[dict]], None]:
    def dress(live: list[dict]) -> None:
        isvc = of_kind(live, "InferenceService")[0]
        name = isvc["metadata"]["name"]
        failing = {"reason": "RevisionFailed", "message": "the predictor does not start"} if ready == "False" else {}
        isvc["status"] = {
            "url": f"http://{name}.ml.example.com",
            "conditions": [{"type": t, "status": ready, **failing}
                           for t in ("PredictorReady", "IngressReady", "Ready")],
            "components": {"predictor": {"latestReadyRevision": f"{name}-predictor-00002", "traffic": [
                {"revisionName": f"{name}-predictor-0000{i + 1}", "percent": p} for i, p in enumerate(traffic)]}}}
    return dress


def service(dress=None, body=None, refs=None) -> dict[str, Any]:
    return observed(body or plain_service(), refs=refs, dress=dress)


def service_waiting_for_fine_tune() -> dict[str, Any]:
    body = with_spec(plain_service(), model={"fineTuneRef": {"name": "ft"}})
    return service(body=body, refs={("FineTune", "ft"): None})


def spent_service() -> dict[str, Any]:
    """A service whose last status spent its budget this period: the next pass stops it (scoring/budget.py)."""
    body = with_spec(plain_service(), budget={"limit": 0.5, "action": "Stop"})
    body["status"] = {"phase": "Ready", "observedGeneration": 1, "conditions": [], "cost": {
        "currency": "USD", "hourlyRate": 0.1, "spent": 0.6, "periodStart": "2026-05-01T00:00:00Z",
        "updatedAt": "2026-05-01T11:59:00Z"}}
    return service(kserve("True"), body=body)


# PromptRelease -------------------------------------------------------------------------------------------------

def prompt_release(canary: dict[str, Any] | None = None, released: bool = True, **spec: Any) -> dict[str, Any]:
    """The example's versions with this rollout, no live analysis nor evaluation (which read a running service)."""
    body = example("PromptRelease")
    rollout = {"stable": "v1", **({"canary": canary} if canary else {})}
    body["spec"] = {"versions": body["spec"]["versions"], "rollout": rollout, **spec}
    obj = parse(BY_KIND["PromptRelease"], body)
    rec = reconciler("PromptRelease")
    live = rec.children(obj, ctx(), {}) if released else []
    return live_body(body, rec.status(obj, live, None, ctx(), {}))


FIXED_CANARY = {"version": "v2", "weight": 10}
STEPS = {"version": "v2", "steps": [{"weight": 10, "minDuration": "10m"}, {"weight": 50, "minDuration": "10m"}]}


def rolled_back_release() -> dict[str, Any]:
    return prompt_release(FIXED_CANARY, rollbackTo="v1")


# ----- the cases ---------------------------------------------------------------------------------------------

RUNNING = {"jobDeploymentStatus": "Running", "jobStatus": "RUNNING"}
CASES: list[tuple[str, str, Callable[[], dict], str]] = [
    ("TrainingJob", "pending", lambda: training(), "Progressing"),
    ("TrainingJob", "initializing", lambda: training(rayjob_status(jobDeploymentStatus="Initializing")), "Progressing"),
    ("TrainingJob", "running", lambda: training(rayjob_status(**RUNNING)), "Progressing"),
    ("TrainingJob", "succeeded",
     lambda: training(rayjob_status(jobDeploymentStatus="Complete", jobStatus="SUCCEEDED")), "Healthy"),
    ("TrainingJob", "failed", lambda: training(rayjob_status(jobDeploymentStatus="Failed", jobStatus="FAILED",
                                                             reason="DeadlineExceeded")), "Degraded"),
    ("TrainingJob", "ray job stopped",
     lambda: training(rayjob_status(jobDeploymentStatus="Complete", jobStatus="STOPPED")), "Degraded"),
    ("TrainingJob", "suspended by spec", lambda: training(rayjob_status(jobDeploymentStatus="Suspended")), "Suspended"),
    ("TrainingJob", "budget suspends", lambda: spent_training_job("Suspend"), "Suspended"),
    ("TrainingJob", "budget stops", lambda: spent_training_job("Stop"), "Degraded"),
    ("FineTune", "running", lambda: fine_tune(rayjob_status(**RUNNING)), "Progressing"),
    ("FineTune", "gates passed", lambda: gated_fine_tune("Passed"), "Healthy"),
    ("FineTune", "gate failed", lambda: gated_fine_tune("Failed"), "Degraded"),
    ("FineTune", "waiting for its TrainingJob", lambda: fine_tune_after("Running", "Unknown"), "Progressing"),
    ("FineTune", "blocked by a failed TrainingJob", lambda: fine_tune_after("Failed", "False"), "Degraded"),
    ("VectorIndex", "ingesting", lambda: vector_index({"active": 1}), "Progressing"),
    ("VectorIndex", "ready", lambda: vector_index(COMPLETE), "Healthy"),
    ("VectorIndex", "failed", lambda: vector_index(FAILED), "Degraded"),
    ("FeatureView", "registering", lambda: feature_view({"active": 1}), "Progressing"),
    ("FeatureView", "materializing", lambda: feature_view(COMPLETE, {"active": 1}), "Progressing"),
    ("FeatureView", "ready", lambda: feature_view(COMPLETE, COMPLETE), "Healthy"),
    ("FeatureView", "failed", lambda: feature_view(FAILED), "Degraded"),
    ("Guardrail", "compiling", lambda: guardrail(compiled=False), "Progressing"),
    ("Guardrail", "compiled", lambda: guardrail(compiled=True), "Healthy"),
    ("InferenceService", "waiting for KServe", lambda: service(), "Progressing"),
    ("InferenceService", "deploying", lambda: service(kserve("Unknown")), "Progressing"),
    ("InferenceService", "ready", lambda: service(kserve("True")), "Healthy"),
    ("InferenceService", "canary split", lambda: service(kserve("True", (90, 10))), "Healthy"),
    ("InferenceService", "KServe failing", lambda: service(kserve("False")), "Degraded"),
    ("InferenceService", "waiting for its FineTune", service_waiting_for_fine_tune, "Progressing"),
    ("InferenceService", "stopped by its budget", spent_service, "Degraded"),
    ("PromptRelease", "ConfigMaps pending", lambda: prompt_release(FIXED_CANARY, released=False), "Progressing"),
    ("PromptRelease", "stable", lambda: prompt_release(), "Healthy"),
    ("PromptRelease", "fixed canary held", lambda: prompt_release(FIXED_CANARY), "Healthy"),
    ("PromptRelease", "canary walking its steps", lambda: prompt_release(STEPS), "Progressing"),
    ("PromptRelease", "rolled back", rolled_back_release, "Degraded"),
]


def test_every_kind_has_a_check_and_every_case_list_covers_it(scripts):
    kinds = {k.info.kind for k in ALL_KINDS}
    assert set(scripts) == kinds
    assert {kind for kind, *_ in CASES} == kinds


@pytest.mark.parametrize("kind, state, build, expected", CASES, ids=[f"{k}-{s}" for k, s, *_ in CASES])
def test_health_follows_the_status(scripts, kind, state, build, expected):
    body = build()
    health = run_check(scripts[kind], body)
    assert health["status"] == expected, (body["status"], health)
    assert health["message"], "Argo CD shows the message: it must say something"


def invalid(kind: str) -> dict[str, Any]:
    """A spec the operator cannot act on, as the loop reports it (`Loop._observe`)."""
    body = with_spec(example(kind), unknownField=True)
    with pytest.raises(InvalidSpec) as err:
        parse(BY_KIND[kind], body)
    return live_body(body, invalid_observation(str(err.value)))


@pytest.mark.parametrize("kind", sorted(k.info.kind for k in ALL_KINDS))
def test_invalid_spec_is_degraded_with_the_field_named(scripts, kind):
    health = run_check(scripts[kind], invalid(kind))
    assert health["status"] == "Degraded"
    assert "unknownField" in health["message"]


@pytest.mark.parametrize("kind", sorted(k.info.kind for k in ALL_KINDS))
def test_a_fresh_generation_is_progressing_never_degraded(scripts, kind):
    body = invalid(kind)
    body["metadata"]["generation"] = 2  # the user fixed the spec; the operator has not seen it yet
    health = run_check(scripts[kind], body)
    assert health["status"] == "Progressing"
    assert "generation 2" in health["message"]


@pytest.mark.parametrize("kind", sorted(k.info.kind for k in ALL_KINDS))
def test_no_status_yet_is_progressing(scripts, kind):
    assert run_check(scripts[kind], example(kind))["status"] == "Progressing"


@pytest.mark.parametrize("kind", sorted(k.info.kind for k in ALL_KINDS))
def test_a_stalled_pass_is_degraded_with_the_api_server_s_message(scripts, kind):
    body = example(kind)
    failure = kstatus.PassFailure("EngineMissing", "the rayjobs.ray.io CRD is not installed: install KubeRay")
    health = run_check(scripts[kind], live_body(body, kstatus.failed_pass(None, failure)))
    assert health == {"status": "Degraded",
                      "message": "EngineMissing: the rayjobs.ray.io CRD is not installed: install KubeRay"}


def test_the_message_carries_the_reducer_s_explanation(scripts):
    health = run_check(scripts["FineTune"], gated_fine_tune("Failed"))
    assert health["message"].startswith("GateFailed: ") and "rougeL 0.1" in health["message"]
    rolled_back = run_check(scripts["PromptRelease"], rolled_back_release())
    assert "spec.rollbackTo" in rolled_back["message"]


def test_health_checks_render_only_when_enabled():
    rendered = helm.Chart.load(str(CHART)).render(None, name="llmops-operator", namespace="llmops-system")
    assert not [t for p, t in rendered.items() if p.endswith("configmap-argocd-health.yaml") and t.strip()]
