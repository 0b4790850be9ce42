"""InferenceService spec.adapters: validation, the adapters ConfigMap and vLLM arguments, status per adapter."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from llmops_operator.api.crdgen import crd
from llmops_operator.api.v1alpha1 import InferenceService
from llmops_operator.api.v1alpha1.inferenceservice import InferenceServiceStatus
from llmops_operator.backends.prometheus import parse_exposition
from llmops_operator.controllers.inferenceservice import InferenceServiceReconciler
from llmops_operator.core.contract import Context, InvalidSpec, parse
from llmops_operator.core.settings import Settings
from llmops_operator.status.inferenceservice import ServingFacts

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=timezone.utc)
BASE_URI = "pvc://models/tiny-llama/final"
TWO = [{"name": "support", "fineTuneRef": {"name": "ft-support"}}, {"name": "docs", "fineTuneRef": {"name": "ft-docs"}}]


def ctx() -> Context:
    settings = Settings(runtime_image="registry.example/llmops:1.0", network_policies=False)
    return Context(settings=settings, catalog=settings.catalog, now=NOW)


def service(adapters=TWO, name="assistants", **spec) -> InferenceService:
    body = {"apiVersion": "llmops.dev/v1alpha1", "kind": "InferenceService",
            "metadata": {"name": name, "namespace": "ml"},
            "spec": {"model": {"trainingJobRef": {"name": "tiny-llama"}}, "adapters": adapters, **spec}}
    return parse(InferenceService, body)


def fine_tune(phase="Succeeded", uri: str | None = None, rank=8, **spec) -> dict:
    conditions = [{"type": "Ready", "status": "True" if phase == "Succeeded" else "False", "reason": phase}]
    status = {"phase": phase, "conditions": conditions, **({"outputUri": uri} if uri else {})}
    return {"spec": {"method": "lora", "lora": {"r": rank}, **spec}, "status": status}


def refs(**fine_tunes) -> dict:
    base = {("TrainingJob", "tiny-llama"): {"status": {"phase": "Succeeded", "outputUri": BASE_URI, "conditions": [
        {"type": "Ready", "status": "True", "reason": "Succeeded"}]}}}
    return {**base, **{("FineTune", name): body for name, body in fine_tunes.items()}}


def both_served() -> dict:
    return refs(**{"ft-support": fine_tune(uri="pvc://models/support"),
                   "ft-docs": fine_tune(uri="pvc://models/docs", rank=16)})


def children(obj, given) -> dict[str, dict]:
    return {d["kind"]: d for d in InferenceServiceReconciler().children(obj, ctx(), given)}


def adapters_file(config_map: dict) -> list[dict]:
    return json.loads(config_map["data"]["adapters.json"])["adapters"]


# ----- validation ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("adapters, message", [
    ([TWO[0], {**TWO[1], "name": "support"}], "spec.adapters: name 'support' appears more than once"),
    ([{"name": "Bad_Name", "fineTuneRef": {"name": "x"}}], "spec.adapters.0.name: String should match pattern"),
    ([{"name": f"a{i}", "fineTuneRef": {"name": "x"}} for i in range(17)],
     "spec.adapters: List should have at most 16"),
    ([{"name": "a"}], "spec.adapters.0.fineTuneRef: Field required"),
])
def test_bad_adapter_lists_are_refused_naming_the_field(adapters, message):
    with pytest.raises(InvalidSpec) as err:
        service(adapters)
    assert message in str(err.value)


def test_an_adapter_cannot_take_the_base_models_name():
    with pytest.raises(InvalidSpec, match=r"spec.adapters\[1\].name 'assistants'"):
        InferenceServiceReconciler().check(service([TWO[0], {**TWO[1], "name": "assistants"}]), ctx())


def test_the_crd_keys_adapters_by_name_and_bounds_them():
    spec = crd(InferenceService)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    adapters = spec["properties"]["adapters"]
    assert adapters["maxItems"] == 16 and adapters["x-kubernetes-list-map-keys"] == ["name"]


# ----- what is built ---------------------------------------------------------------------------------------

def test_served_adapters_are_listed_in_a_configmap_the_predictor_mounts():
    built = children(service(), both_served())
    isvc, config_map = built["InferenceService"], built["ConfigMap"]
    assert config_map["metadata"]["name"] == "assistants-adapters"
    assert adapters_file(config_map) == [{"name": "support", "uri": "pvc://models/support"},
                                         {"name": "docs", "uri": "pvc://models/docs"}]
    predictor = isvc["spec"]["predictor"]
    assert predictor["model"]["storageUri"] == BASE_URI
    assert {"name": "llmops-adapters", "configMap": {"name": "assistants-adapters", "optional": True}} in \
        predictor["volumes"]
    assert {"name": "LLMOPS_ADAPTERS_FILE", "value": "/etc/llmops/adapters/adapters.json"} in predictor["model"]["env"]
    # on CPU the list lives in the ConfigMap only: the arguments are the runtime's backend alone
    assert predictor["model"]["args"] == ["--backend=huggingface"]


def test_a_new_adapter_changes_the_configmap_and_not_the_kserve_spec():
    pending = children(service(), refs(**{"ft-support": fine_tune(uri="pvc://models/support"),
                                          "ft-docs": fine_tune("Running")}))
    promoted = children(service(), both_served())
    assert [a["name"] for a in adapters_file(pending["ConfigMap"])] == ["support"]
    assert [a["name"] for a in adapters_file(promoted["ConfigMap"])] == ["support", "docs"]
    assert pending["InferenceService"] == promoted["InferenceService"]  # nothing rolls: the predictor reloads


def test_on_gpus_the_adapters_become_vllm_lora_arguments():
    obj = service(resources={"gpus": 1, "gpuType": "nvidia-l4"})
    given = refs(**{"ft-support": fine_tune(uri="pvc://models/support"),
                    "ft-docs": fine_tune(uri="hf://acme/docs-lora", rank=12)})
    predictor = children(obj, given)["InferenceService"]["spec"]["predictor"]
    assert predictor["model"]["args"] == [
        "--backend=vllm", "--enable-lora", "--max-loras=2", "--max-lora-rank=16", "--lora-modules",
        "support=/mnt/adapters/models/support", "docs=acme/docs-lora"]
    [claim] = [v for v in predictor["volumes"] if "persistentVolumeClaim" in v]
    assert claim["persistentVolumeClaim"] == {"claimName": "models", "readOnly": True}
    assert {"name": claim["name"], "mountPath": "/mnt/adapters/models", "readOnly": True} in \
        predictor["model"]["volumeMounts"]


def test_without_adapters_nothing_is_mounted():
    isvc = children(service(None, model={"uri": BASE_URI}), {})
    assert list(isvc) == ["InferenceService"] and "volumes" not in isvc["InferenceService"]["spec"]["predictor"]


def test_the_base_model_can_be_a_training_jobs_output_and_waits_for_it():
    obj = service()
    assert InferenceServiceReconciler().children(obj, ctx(), {}) is None
    seen = InferenceServiceReconciler().status(obj, [], None, ctx(), {})
    assert seen.conditions[-1].reason == "TrainingJobNotFound"
    assert ("TrainingJob", "tiny-llama") in InferenceServiceReconciler().references(obj)
    assert {("FineTune", "ft-support"), ("FineTune", "ft-docs")} <= set(InferenceServiceReconciler().references(obj))


# ----- status ------------------------------------------------------------------------------------------------

def adapter_status(given, facts=None, obj=None) -> tuple[dict, dict]:
    obj = obj or service()
    isvc = children(obj, given)["InferenceService"]
    live = {**isvc, "status": {"url": "http://assistants", "conditions": [
        {"type": t, "status": "True"} for t in ("PredictorReady", "IngressReady", "Ready")]}}
    seen = InferenceServiceReconciler().status(obj, [live], facts, ctx(), given)
    by_type = {c.type: c for c in seen.conditions}
    assert seen.conditions[-1].type == "Ready" and by_type["Ready"].status == "True"  # adapters never gate Ready
    return by_type, {a["name"]: a for a in seen.fields["adapters"]}


@pytest.mark.parametrize("docs, state, reason, says", [
    (None, "Pending", "AdaptersPending", "FineTune 'ft-docs' does not exist"),
    (fine_tune("Running"), "Pending", "AdaptersPending", "waiting for FineTune 'ft-docs' to succeed (phase Running)"),
    (fine_tune(uri="pvc://m/docs", output={"mergeAdapter": True}), "Invalid", "AdapterInvalid",
     "saves a whole model (output.mergeAdapter true)"),
    (fine_tune(uri="pvc://m/docs", method="full"), "Invalid", "AdapterInvalid", "method full"),
])
def test_adapters_without_an_adapter_to_serve_say_why(docs, state, reason, says):
    given = refs(**{"ft-support": fine_tune(uri="pvc://models/support"), **({"ft-docs": docs} if docs else {})})
    conditions, adapters = adapter_status(given)
    assert adapters["support"]["state"] == "Served" and adapters["docs"]["state"] == state
    assert says in adapters["docs"]["message"]
    ready = conditions["AdaptersReady"]
    assert (ready.status, ready.reason) == ("False", reason) and "adapter 'docs'" in ready.message
    assert [a["name"] for a in adapters_file(children(service(), given)["ConfigMap"])] == ["support"]


def test_on_gpus_an_adapter_vllm_cannot_read_is_invalid():
    obj = service(resources={"gpus": 1, "gpuType": "nvidia-l4"})
    given = refs(**{"ft-support": fine_tune(uri="s3://bucket/support"), "ft-docs": fine_tune(uri="pvc://m/d")})
    conditions, adapters = adapter_status(given, obj=obj)
    assert adapters["support"]["state"] == "Invalid" and "pvc:// or hf://" in adapters["support"]["message"]
    assert conditions["AdaptersReady"].reason == "AdapterInvalid"


METRICS = """\
# TYPE llmops_model_requests counter
llmops_model_requests_total{model="assistants",outcome="allowed"} 2
llmops_model_requests_total{model="support",outcome="allowed"} 6
llmops_model_requests_total{model="support",outcome="blocked"} 2
llmops_model_requests_total{model="support",outcome="error"} 1
# TYPE llmops_model_tokens counter
llmops_model_tokens_total{model="assistants",direction="in"} 100
llmops_model_tokens_total{model="assistants",direction="out"} 100
llmops_model_tokens_total{model="support",direction="in"} 500
llmops_model_tokens_total{model="support",direction="out"} 300
"""


def test_each_adapter_reports_its_requests_token_share_cost_and_safety():
    facts = ServingFacts(sample=parse_exposition(METRICS), seconds=3600)
    conditions, adapters = adapter_status(both_served(), facts)
    assert conditions["AdaptersReady"].status == "True"
    support = adapters["support"]
    assert support["requests"] == 9 and support["tokens"] == 800 and support["tokenShare"] == 0.8
    assert support["safety"] == {"score": 0.75, "evaluated": 8}  # the error says nothing about safety
    rate = InferenceServiceReconciler().status(service(), [], facts, ctx(), both_served()).fields["cost"]["hourlyRate"]
    assert support["hourlyCost"] == pytest.approx(rate * 0.8, abs=1e-6)
    assert adapters["docs"] == {"name": "docs", "fineTune": "ft-docs", "uri": "pvc://models/docs", "state": "Served"}
    InferenceServiceStatus.model_validate({"adapters": list(adapters.values())})  # the block fits the status schema
