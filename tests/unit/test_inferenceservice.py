"""InferenceService: model validation, the KServe InferenceService it builds, waiting on references, status."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml

from llmops_operator.builders.pod_security import CONTAINER_SECURITY_CONTEXT, POD_SECURITY_CONTEXT
from llmops_operator.api.v1alpha1 import Guardrail, InferenceService, PromptRelease
from llmops_operator.core.contract import Context, InvalidSpec, parse
from llmops_operator.controllers.base import compose_status, status_patch
from llmops_operator.controllers.guardrail import GuardrailReconciler
from llmops_operator.controllers.inferenceservice import InferenceServiceReconciler
from llmops_operator.controllers.promptrelease import PromptReleaseReconciler
from llmops_operator.core.settings import Settings
from llmops_operator.status.inferenceservice import ServingFacts
from llmops_operator.backends.prometheus import parse_exposition

from spec_options import with_

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 5, 1, 12, 0, tzinfo=timezone.utc)
URI = "pvc://models/assistant"
EXACTLY_ONE_MODEL = "spec.model: set exactly one of model.uri, model.fineTuneRef and model.trainingJobRef"


def ctx() -> Context:
    settings = Settings(runtime_image="registry.example/llmops:1.0")
    return Context(settings=settings, catalog=settings.catalog, now=NOW)


def service(*options, name="assistant", status: dict | None = None) -> InferenceService:
    spec = {"model": {"uri": URI}}
    for option in options:
        option(spec)
    return parse(InferenceService, {"apiVersion": "llmops.dev/v1alpha1", "kind": "InferenceService",
                                    "metadata": {"name": name, "namespace": "ml"}, "spec": spec,
                                    **({"status": status} if status is not None else {})})


def from_fine_tune(name="ft"):
    return with_("model", {"fineTuneRef": {"name": name}})


def ready(body: dict, **status) -> dict:
    return {**body, "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "Done"}], **status}}


def guardrail_ref() -> dict:
    body = {"apiVersion": "llmops.dev/v1alpha1", "kind": "Guardrail", "metadata": {"name": "policy"},
            "spec": {"checks": [{"name": "tox", "type": "toxicity"}]}}
    status = GuardrailReconciler().projected_status(parse(Guardrail, body), ctx())
    return {**body, "status": {**status, "safety": {"score": 0.97, "evaluated": 200}}}


def prompt_ref(canary: bool = True) -> dict:
    body = {"apiVersion": "llmops.dev/v1alpha1", "kind": "PromptRelease", "metadata": {"name": "prompt"},
            "spec": {"versions": [{"name": "v1", "template": "a"}, {"name": "v2", "template": "b"}],
                     "rollout": {"stable": "v1", **({"canary": {"version": "v2", "weight": 10}} if canary else {})}}}
    return {**body, "status": PromptReleaseReconciler().projected_status(parse(PromptRelease, body), ctx())}


def all_refs() -> dict:
    return {("FineTune", "ft"): ready({}, outputUri="pvc://models/ft/final"),
            ("Guardrail", "policy"): guardrail_ref(), ("PromptRelease", "prompt"): prompt_ref()}


def guarded(*options, status: dict | None = None):
    return service(from_fine_tune(), with_("guardrailRef", {"name": "policy"}),
                   with_("promptReleaseRef", {"name": "prompt"}), *options, status=status)


def children(obj, refs=None) -> list[dict]:
    return InferenceServiceReconciler().children(obj, ctx(), {} if refs is None else refs)


def kserve(obj, refs=None) -> dict:
    isvc, *policies = children(obj, refs)
    assert [p["kind"] for p in policies] == (["NetworkPolicy"] if "transformer" in isvc["spec"] else [])
    return isvc


def observe(obj, live, refs=None, facts=None):
    return InferenceServiceReconciler().status(obj, live, facts, ctx(), {} if refs is None else refs)


def kserve_status(isvc: dict, **conditions: str) -> dict:
    status = {"url": "http://assistant.ml.example.com",
              "conditions": [{"type": t, "status": s, **({"reason": "RevisionMissing", "message": "not yet"}
                                                         if s == "False" else {})} for t, s in conditions.items()],
              "components": {"predictor": {"latestReadyRevision": "assistant-predictor-00002",
                                           "traffic": [{"revisionName": "assistant-predictor-00002", "percent": 100,
                                                        "latestRevision": True}]}}}
    return {**isvc, "status": status}


# ----- validation ----------------------------------------------------------------------------------

def test_the_example_parses_and_names_its_references():
    service, reference = yaml.safe_load_all((ROOT / "manifests/examples/inferenceservice.yaml").read_text())
    obj = parse(InferenceService, service)
    assert reference["metadata"]["name"] == obj.spec.drift.reference.config_map.name
    assert InferenceServiceReconciler().references(obj) == [
        ("FineTune", "tiny-llama-chat"), ("Guardrail", "default-policy"), ("PromptRelease", "assistant-prompt")]


@pytest.mark.parametrize("options, message", [
    ([with_("model", {"format": "huggingface"})], EXACTLY_ONE_MODEL),
    ([with_("model.fineTuneRef", {"name": "ft"})], EXACTLY_ONE_MODEL),
    ([with_("replicas", {"min": 3, "max": 2})], "spec.replicas: replicas.min must not exceed replicas.max"),
    ([with_("replicas", {"min": 2})], "spec.replicas: replicas.min must not exceed replicas.max"),
    ([with_("canaryTrafficPercent", 101)], "spec.canaryTrafficPercent: Input should be less than or equal to 100"),
    ([with_("resources.gpus", 1)], "spec.resources: gpuType is required when gpus is above 0"),
    ([with_("scaling.metric", "gpu")], "spec.scaling.metric: Input should be 'concurrency', 'rps', 'cpu', 'memory', 'inFlightRequests' or 'queueDepth'"),
])
def test_bad_services_name_the_field(options, message):
    with pytest.raises(InvalidSpec) as err:
        service(*options)
    assert str(err.value).startswith(message)


def test_unknown_gpu_type_is_an_invalid_spec():
    obj = service(with_("resources", {"gpus": 1, "gpuType": "nvidia-b200"}))
    with pytest.raises(InvalidSpec, match="spec.resources.gpuType: unknown GPU type 'nvidia-b200'"):
        InferenceServiceReconciler().check(obj, ctx())


# ----- the KServe InferenceService -----------------------------------------------------------------

def test_plain_model_builds_a_predictor_only():
    isvc = kserve(service(with_("replicas", {"min": 0, "max": 4}), with_("scaling", {"metric": "rps", "target": 20}),
                          with_("canaryTrafficPercent", 10), with_("model.runtime", "kserve-huggingfaceserver")))
    assert isvc["apiVersion"] == "serving.kserve.io/v1beta1" and isvc["kind"] == "InferenceService"
    assert isvc["metadata"]["name"] == "assistant" and isvc["metadata"]["namespace"] == "ml"
    assert isvc["metadata"]["labels"]["llmops.dev/inferenceservice"] == "assistant"
    assert "annotations" not in isvc["metadata"] and "transformer" not in isvc["spec"]
    predictor = isvc["spec"]["predictor"]
    assert predictor.pop("automountServiceAccountToken") is False
    assert predictor.pop("securityContext") == POD_SECURITY_CONTEXT
    assert predictor["model"].pop("securityContext") == CONTAINER_SECURITY_CONTEXT
    assert predictor == {
        "minReplicas": 0, "maxReplicas": 4, "scaleMetric": "rps", "scaleTarget": 20, "canaryTrafficPercent": 10,
        "model": {"modelFormat": {"name": "huggingface"}, "runtime": "kserve-huggingfaceserver", "storageUri": URI,
                  "args": ["--backend=huggingface"],
                  "resources": {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"cpu": "1", "memory": "2Gi"}}}}


def test_gpus_request_the_device_and_select_the_nodes():
    predictor = kserve(service(with_("resources", {"gpus": 1, "gpuType": "nvidia-l4"})))["spec"]["predictor"]
    assert predictor["model"]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert predictor["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-L4"}


def test_fine_tune_output_is_served_with_policy_and_prompts_mounted():
    isvc = kserve(guarded(), all_refs())
    refs = all_refs()
    policy_cm = refs[("Guardrail", "policy")]["status"]["policyConfigMap"]
    prompt = refs[("PromptRelease", "prompt")]["status"]
    assert isvc["spec"]["predictor"]["model"]["storageUri"] == "pvc://models/ft/final"
    transformer = isvc["spec"]["transformer"]
    [container] = transformer["containers"]
    assert container["name"] == "kserve-container" and container["image"] == "registry.example/llmops:1.0"
    assert container["command"] == ["python", "-m", "llmops_operator.servers.transformer"]
    assert transformer["volumes"] == [
        {"name": "guardrail-policy", "configMap": {"name": policy_cm}},
        {"name": "prompt-stable", "configMap": {"name": prompt["stable"]["configMap"]}},
        {"name": "prompt-canary", "configMap": {"name": prompt["canary"]["configMap"]}},
        {"name": "prompt-routing", "configMap": {"name": "prompt-prel-routing"}}]
    assert [m["mountPath"] for m in container["volumeMounts"]] == [
        "/etc/llmops/guardrail", "/etc/llmops/prompts/versions/v1", "/etc/llmops/prompts/versions/v2",
        "/etc/llmops/prompts/routing"]
    assert {e["name"]: e["value"] for e in container["env"]} == {
        "LLMOPS_SERVICE": "assistant", "LLMOPS_GUARDRAIL_POLICY": "/etc/llmops/guardrail/policy.json",
        "LLMOPS_GUARDRAIL_POLICY_ID": "policy", "LLMOPS_PROMPT_DIR": "/etc/llmops/prompts/versions",
        "LLMOPS_PROMPT_ROUTING": "/etc/llmops/prompts/routing/routing.json"}
    hashes = isvc["metadata"]["annotations"]
    assert hashes["llmops.dev/guardrail-policy-hash"] == refs[("Guardrail", "policy")]["status"]["policyHash"]
    assert transformer["annotations"] == hashes


def test_a_new_prompt_version_changes_the_prompt_hash():
    with_canary = kserve(guarded(), all_refs())["metadata"]["annotations"]["llmops.dev/prompt-hash"]
    refs = {**all_refs(), ("PromptRelease", "prompt"): prompt_ref(canary=False)}
    stable_only = kserve(guarded(), refs)
    assert stable_only["metadata"]["annotations"]["llmops.dev/prompt-hash"] != with_canary
    assert [v["name"] for v in stable_only["spec"]["transformer"]["volumes"]] == [
        "guardrail-policy", "prompt-stable", "prompt-routing"]


# ----- waiting on references -----------------------------------------------------------------------

@pytest.mark.parametrize("refs, reason, message", [
    ({}, "FineTuneNotFound", "spec.model.fineTuneRef: FineTune 'ft' does not exist in this namespace"),
    ({("FineTune", "ft"): {"status": {"phase": "Running"}}}, "FineTuneNotSucceeded",
     "waiting for FineTune 'ft' to succeed (phase Running)"),
    ({("FineTune", "ft"): ready({}, outputUri="pvc://m")}, "GuardrailNotFound",
     "spec.guardrailRef: Guardrail 'policy' does not exist in this namespace"),
    ({("FineTune", "ft"): ready({}, outputUri="pvc://m"), ("Guardrail", "policy"): {"status": {}}},
     "GuardrailNotReady",
     "waiting for Guardrail 'policy' to be Ready (its policy compiled and, with spec.evaluation, passed)"),
    ({**all_refs(), ("PromptRelease", "prompt"): {"status": {"phase": "Pending"}}}, "PromptReleaseNotReady",
     "waiting for PromptRelease 'prompt' to release its versions"),
])
def test_missing_or_unready_references_build_nothing_and_say_why(refs, reason, message):
    obj = guarded()
    assert children(obj, refs) is None
    seen = observe(obj, [], refs)
    ready_ = seen.conditions[-1]
    assert (ready_.type, ready_.status, ready_.reason) == ("Ready", "False", reason)
    assert ready_.message == f"{message}; the KServe InferenceService is not created until it is"
    assert seen.phase == "Pending"


# ----- status from KServe ---------------------------------------------------------------------------

def test_ready_service_reports_url_traffic_cost_and_safety():
    obj = guarded()
    refs = all_refs()
    live = [kserve_status(kserve(obj, refs), PredictorReady="True", TransformerReady="True", IngressReady="True",
                          Ready="True")]
    seen = observe(obj, live, refs, ServingFacts(sample=parse_exposition(runtime_metrics(tokens=36_000, requests=0)),
                                                 seconds=3600))
    assert [(c.type, c.status) for c in seen.conditions] == [
        ("ModelReady", "True"), ("GuardrailAttached", "True"), ("PromptAttached", "True"), ("MetricsAvailable", "True"),
        ("Ready", "True")]
    assert seen.phase == "Ready"
    fields = seen.fields
    assert fields["url"] == "http://assistant.ml.example.com" and fields["modelUri"] == "pvc://models/ft/final"
    assert fields["latestReadyRevision"] == "assistant-predictor-00002"
    assert fields["traffic"] == [{"revision": "assistant-predictor-00002", "percent": 100, "latest": True}]
    assert fields["safety"] == {"score": 0.97, "evaluated": 200}
    assert fields["attached"] == {"policyConfigMap": refs[("Guardrail", "policy")]["status"]["policyConfigMap"],
                                  "promptStable": "v1", "promptCanary": "v2"}
    # predictor 1 CPU + 2 GiB, transformer 0.5 CPU + 1 GiB, one replica, default catalog prices
    hourly = 1.5 * 0.0316 + 3 * 0.0042
    assert fields["cost"]["hourlyRate"] == round(hourly, 4)
    assert fields["cost"]["per1KTokens"] == round(hourly / 36_000 * 1000, 4)
    assert fields["cost"]["updatedAt"] == "2026-05-01T12:00:00Z"


def test_cost_scales_with_the_replica_floor():
    one = observe(service(), [kserve(service())]).fields["cost"]["hourlyRate"]
    three = service(with_("replicas", {"min": 3, "max": 3}))
    assert observe(three, [kserve(three)]).fields["cost"]["hourlyRate"] == pytest.approx(3 * one, abs=1e-4)
    assert observe(three, [kserve(three)]).fields["cost"].get("per1KTokens") is None


def test_predictor_failure_is_degraded_with_kserves_reason():
    obj = service()
    seen = observe(obj, [kserve_status(kserve(obj), PredictorReady="False", Ready="False")])
    assert seen.conditions[0] == seen.conditions[0].__class__("ModelReady", "False", "RevisionMissing", "not yet")
    assert (seen.conditions[-1].status, seen.conditions[-1].reason) == ("False", "RevisionMissing")
    assert seen.phase == "Degraded"


def test_ingress_not_ready_keeps_the_service_deploying():
    obj = service()
    seen = observe(obj, [kserve_status(kserve(obj), PredictorReady="True", IngressReady="Unknown", Ready="Unknown")])
    assert [(c.type, c.status) for c in seen.conditions] == [("ModelReady", "True"), ("Ready", "Unknown")]
    assert seen.phase == "Deploying"


def test_no_kserve_status_yet_is_pending():
    obj = service()
    seen = observe(obj, [kserve(obj)])
    assert [(c.type, c.status, c.reason) for c in seen.conditions] == [
        ("ModelReady", "Unknown", "PredictorReadyUnknown"), ("Ready", "Unknown", "PredictorReadyUnknown")]
    assert seen.phase == "Pending" and "url" not in seen.fields


def test_split_traffic_is_canary():
    obj = service(with_("canaryTrafficPercent", 20))
    live = kserve_status(kserve(obj), PredictorReady="True", Ready="True")
    live["status"]["components"]["predictor"]["traffic"] = [
        {"revisionName": "r2", "percent": 20, "latestRevision": True}, {"revisionName": "r1", "percent": 80}]
    assert observe(obj, [live]).phase == "Canary"


def test_drift_settings_appear_unscored():
    obj = service(with_("drift", {"reference": {"configMap": {"name": "ref"}}, "threshold": 0.3}))
    assert observe(obj, [kserve(obj)]).fields["drift"] == {
        "metric": "psi", "threshold": 0.3, "drifted": False, "window": "1h"}


# ----- CRD ------------------------------------------------------------------------------------------

def test_crd_carries_the_rules_and_columns():
    crd = yaml.safe_load((ROOT / "crds/llmops.dev_inferenceservices.yaml").read_text())
    version = crd["spec"]["versions"][0]
    spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    assert spec["model"]["x-kubernetes-validations"] == [
        {"rule": "[has(self.uri), has(self.fineTuneRef), has(self.trainingJobRef)].filter(x, x).size() == 1",
         "message": "set exactly one of model.uri, model.fineTuneRef and model.trainingJobRef"}]
    assert spec["replicas"]["x-kubernetes-validations"][0]["message"] == "replicas.min must not exceed replicas.max"
    assert spec["canaryTrafficPercent"]["maximum"] == 100
    assert [c["name"] for c in version["additionalPrinterColumns"]] == [
        "Ready", "Phase", "URL", "Cost", "Drift", "Safety", "RetrievalP99", "Top1", "Age"]
    assert crd["spec"]["names"]["shortNames"] == ["lsvc"] and crd["spec"]["group"] == "llmops.dev"


# ----- live metrics from the guardrail runtime -----------------------------------------------------

def runtime_metrics(tokens: int = 0, requests: int = 100, blocked: int = 0, redacted: int = 0,
                    prompt_lengths: tuple[int, ...] = (), latencies: tuple[float, ...] = ()) -> str:
    """The runtime's exposition, produced by prometheus_client with the runtime's metric names and buckets."""
    from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

    from llmops_operator.servers.request_metrics import LATENCY_BUCKETS, LENGTH_BUCKETS

    registry = CollectorRegistry()
    served = Counter("llmops_guardrail_requests", "", ["version", "outcome"], registry=registry)
    served.labels("v1", "allowed").inc(requests - blocked - redacted)
    if blocked:
        served.labels("v1", "blocked").inc(blocked)
        Counter("llmops_guardrail_hits", "", ["rule", "direction", "effect"], registry=registry).labels(
            "prompt-injection", "input", "block").inc(blocked)
    if redacted:
        served.labels("v1", "redacted").inc(redacted)
    Counter("llmops_tokens", "", ["direction", "version"], registry=registry).labels("out", "v1").inc(tokens)
    length = Histogram("llmops_prompt_length_chars", "", buckets=LENGTH_BUCKETS, registry=registry)
    for value in prompt_lengths:
        length.observe(value)
    latency = Histogram("llmops_request_latency_seconds", "", buckets=LATENCY_BUCKETS, registry=registry)
    for value in latencies:
        latency.observe(value)
    return generate_latest(registry).decode()


def served(obj, refs, facts):
    live = [kserve_status(kserve(obj, refs), PredictorReady="True", TransformerReady="True", IngressReady="True",
                          Ready="True")]
    return observe(obj, live, refs, facts)


def test_live_verdicts_replace_the_self_test_safety_and_latency_is_reported():
    text = runtime_metrics(requests=200, blocked=8, redacted=12, latencies=(0.02,) * 90 + (0.8,) * 10)
    seen = served(guarded(), all_refs(), ServingFacts(sample=parse_exposition(text), seconds=600))
    safety = seen.fields["safety"]
    assert (safety["score"], safety["evaluated"], safety["byRule"]) == (0.9, 200, {"prompt-injection": 8})
    latency = seen.fields["latency"]
    assert latency["requests"] == 100 and 10 < latency["p50Ms"] <= 25 and 500 < latency["p99Ms"] <= 1000


def test_prompt_length_drift_against_the_reference():
    obj = guarded(with_("drift", {"reference": {"configMap": {"name": "ref", "key": "prompts.jsonl"}},
                                  "metric": "psi", "threshold": 0.2}))
    reference = {"promptLength": [40] * 50 + [100] * 50}
    same = served(obj, all_refs(), ServingFacts(parse_exposition(runtime_metrics(prompt_lengths=(40,) * 50 + (100,) * 50)),
                                                600, reference))
    moved = served(obj, all_refs(), ServingFacts(parse_exposition(runtime_metrics(prompt_lengths=(3000,) * 100)),
                                                 600, reference))
    assert same.fields["drift"]["drifted"] is False and same.fields["drift"]["score"] < 0.01
    assert moved.fields["drift"]["drifted"] is True and moved.fields["drift"]["feature"] == "promptLength"
    assert {c.type: c for c in moved.conditions}["DriftDetected"].status == "True"
    assert {c.type: c for c in same.conditions}["DriftDetected"].status == "False"
    assert moved.fields["drift"]["samples"] == 100


def test_too_few_samples_show_a_score_but_never_drift():
    obj = guarded(with_("drift", {"reference": {"configMap": {"name": "ref", "key": "prompts.jsonl"}},
                                  "metric": "psi", "threshold": 0.2, "minSamples": 30}))
    reference = {"promptLength": [40] * 50 + [100] * 50}
    few = served(obj, all_refs(), ServingFacts(parse_exposition(runtime_metrics(prompt_lengths=(3000,) * 29)),
                                               600, reference))
    drift = few.fields["drift"]
    assert drift["score"] > 0.2 and drift["samples"] == 29 and drift["drifted"] is False
    detected = {c.type: c for c in few.conditions}["DriftDetected"]
    assert (detected.status, detected.reason) == ("False", "TooFewSamples")
    assert "29 of the 30 samples" in detected.message
    enough = served(obj, all_refs(), ServingFacts(parse_exposition(runtime_metrics(prompt_lengths=(3000,) * 30)),
                                                  600, reference))
    assert enough.fields["drift"]["drifted"] is True


# ----- drift across a transformer restart ------------------------------------------------------------

EARLIER = "2026-05-01T11:00:00Z"
REFERENCE = {"promptLength": [40] * 50 + [100] * 50}


def drift_settings(metric: str = "psi", threshold: float = 0.2):
    return with_("drift", {"reference": {"configMap": {"name": "ref", "key": "prompts.jsonl"}},
                           "metric": metric, "threshold": threshold})


def merge_patch(target: dict, patch: dict) -> dict:
    """RFC 7386, as the API server applies the status patch: nested objects merge, null removes a key."""
    merged = dict(target)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_patch(merged[key], value)
        else:
            merged[key] = value
    return merged


def stored_after_pass(previous: dict, facts: ServingFacts, *options) -> dict:
    """The status the API server holds after one pass over a service whose last written status is `previous`."""
    obj = guarded(*options, status=previous)
    new = compose_status(previous, served(obj, all_refs(), facts), 1, "2026-05-01T12:00:00Z")
    return merge_patch(previous, status_patch(previous, new) or {})


def restarted(prompt_lengths: tuple[int, ...] = ()) -> ServingFacts:
    """The runtime's metrics just after its counters reset to zero (a new transformer revision)."""
    return ServingFacts(parse_exposition(runtime_metrics(requests=len(prompt_lengths), prompt_lengths=prompt_lengths)),
                        30, REFERENCE)


def drifted_status() -> dict:
    """The status written an hour earlier, when live prompts had moved far from the reference."""
    obj = guarded(drift_settings())
    moved = ServingFacts(parse_exposition(runtime_metrics(prompt_lengths=(3000,) * 100)), 600, REFERENCE)
    status = compose_status(None, served(obj, all_refs(), moved), 1, EARLIER)
    status["drift"]["evaluatedAt"] = EARLIER
    return status


def assert_consistent(drift: dict) -> None:
    assert drift["drifted"] == (drift["score"] > drift["threshold"]), drift


def test_a_restarted_runtime_keeps_the_last_drift_evaluation():
    before = drifted_status()
    assert before["drift"]["drifted"] is True and before["drift"]["score"] > 10
    after = stored_after_pass(before, restarted(), drift_settings())
    assert after["drift"] == before["drift"]
    drift_condition = next(c for c in after["conditions"] if c["type"] == "DriftDetected")
    assert drift_condition["status"] == "True"


def test_a_kept_drift_score_is_judged_against_the_current_threshold():
    before = drifted_status()
    after = stored_after_pass(before, restarted(), drift_settings(threshold=50.0))
    assert_consistent(after["drift"])
    assert (after["drift"]["drifted"], after["drift"]["threshold"]) == (False, 50.0)
    assert (after["drift"]["score"], after["drift"]["evaluatedAt"]) == (before["drift"]["score"], EARLIER)


def test_unreadable_metrics_keep_the_last_drift_evaluation():
    before = drifted_status()
    after = stored_after_pass(before, ServingFacts(None, None, REFERENCE, error="HTTP 503"), drift_settings())
    assert after["drift"] == before["drift"]


def test_samples_after_a_restart_are_a_new_evaluation():
    before = drifted_status()
    after = stored_after_pass(before, restarted(prompt_lengths=(40,) * 5 + (100,) * 5), drift_settings())
    assert_consistent(after["drift"])
    assert after["drift"]["evaluatedAt"] == "2026-05-01T12:00:00Z" and after["drift"]["drifted"] is False


def test_a_new_drift_metric_drops_the_score_of_the_old_one():
    before = drifted_status()
    after = stored_after_pass(before, restarted(), drift_settings(metric="js"))
    assert after["drift"] == {"metric": "js", "threshold": 0.2, "drifted": False, "window": "1h"}
    assert stored_after_pass(after, restarted(), drift_settings(metric="js")) == after


def test_unreadable_metrics_are_a_condition_not_a_failure():
    seen = served(guarded(), all_refs(), ServingFacts(sample=None, seconds=None,
                                                      error="GET http://x/metrics: HTTP 503"))
    metrics = {c.type: c for c in seen.conditions}["MetricsAvailable"]
    assert metrics.status == "False" and "HTTP 503" in metrics.message
    assert seen.conditions[-1].status == "True"  # still serving


def test_reference_lengths_come_from_the_json_lines_text_field():
    from llmops_operator.controllers.inferenceservice import reference_lengths

    config_map = {"data": {"p.jsonl": '{"text": "abcd"}\nnot json\n{"text": "ab", "output": "xyz"}\n{"other": 1}\n'}}
    assert reference_lengths(config_map, "p.jsonl") == {"promptLength": [4, 2], "outputLength": [3]}
    assert reference_lengths(None, "p.jsonl") == {"promptLength": [], "outputLength": []}


def test_the_cost_stamp_moves_only_when_the_cost_figures_do():
    """A resync that observes the same cost writes no status: updatedAt keeps the time the figures last changed."""
    from llmops_operator.core.contract import Observation
    from llmops_operator.status.inferenceservice import cost_stamp_kept

    before = {"currency": "USD", "hourlyRate": 0.05, "updatedAt": "2026-01-01T00:00:00Z"}
    same = Observation(conditions=[], phase="Pending", fields={"cost": {**before, "updatedAt": "2026-01-01T00:05:00Z"}})
    assert cost_stamp_kept(same, before).fields["cost"]["updatedAt"] == "2026-01-01T00:00:00Z"
    moved = Observation(conditions=[], phase="Pending",
                        fields={"cost": {**before, "hourlyRate": 0.07, "updatedAt": "2026-01-01T00:05:00Z"}})
    assert cost_stamp_kept(moved, before).fields["cost"]["updatedAt"] == "2026-01-01T00:05:00Z"
