"""The sandbox's KServe stand-in: how a KServe InferenceService becomes local processes, and the status it writes."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from llmops_sandbox.standins.kserve_plans import (
    Unservable, model_directory, predictor_plan, transformer_plan, write_files,
)
from llmops_sandbox.standins.kserve_status import (
    FAILED, PREDICTOR, READY, STARTING, TRANSFORMER, ComponentState, service_status,
)

NOW = "2026-01-01T00:00:00Z"
LATER = "2026-01-01T00:05:00Z"


def isvc(transformer: bool = True, storage_uri: str = "pvc://llmops-models/chat", fmt: str = "huggingface") -> dict:
    spec = {"predictor": {"model": {"modelFormat": {"name": fmt}, "storageUri": storage_uri}}}
    if transformer:
        spec["transformer"] = {
            "containers": [{"name": "kserve-container", "image": "x",
                            "command": ["python", "-m", "llmops_operator.servers.transformer"],
                            "env": [{"name": "LLMOPS_GUARDRAIL_POLICY", "value": "/etc/llmops/guardrail/policy.json"}],
                            "volumeMounts": [{"name": "guardrail-policy", "mountPath": "/etc/llmops/guardrail"}]}],
            "volumes": [{"name": "guardrail-policy", "configMap": {"name": "policy-abc"}}]}
    return {"metadata": {"name": "chat", "namespace": "ml", "uid": "u", "generation": 3}, "spec": spec}


def test_the_predictor_serves_the_claim_directory_of_its_storage_uri(tmp_path):
    plan = predictor_plan(isvc(), tmp_path / "pvc", 9001)
    assert plan.argv == [sys.executable, "-m", "llmops_operator.servers.predictor", "--model_name", "chat",
                         "--model_dir", str(tmp_path / "pvc/llmops-models/chat"), "--http_port", "9001",
                         "--host", "127.0.0.1"]


def test_the_predictors_configmap_volumes_are_written_out_and_its_env_points_into_them(tmp_path):
    obj = isvc()
    model = obj["spec"]["predictor"]["model"]
    model["env"] = [{"name": "LLMOPS_ADAPTERS_FILE", "value": "/etc/llmops/adapters/adapters.json"}]
    model["volumeMounts"] = [{"name": "llmops-adapters", "mountPath": "/etc/llmops/adapters", "readOnly": True}]
    obj["spec"]["predictor"]["volumes"] = [{"name": "llmops-adapters",
                                            "configMap": {"name": "chat-adapters", "optional": True}}]
    listing = '{"adapters": [{"name": "a", "uri": "pvc://m/a"}]}'
    sources = {("ConfigMap", "chat-adapters"): {"data": {"adapters.json": listing}}}
    plan = predictor_plan(obj, tmp_path / "pvc", 9001, sources=sources, root=tmp_path / "predictor")
    written = plan.env["LLMOPS_ADAPTERS_FILE"]
    assert written.startswith(str(tmp_path / "predictor")) and plan.files == {Path(written): listing.encode()}
    assert plan.argv[plan.argv.index("--model_dir") + 1] == str(tmp_path / "pvc/llmops-models/chat")
    absent = predictor_plan(obj, tmp_path / "pvc", 9001, sources={}, root=tmp_path / "predictor")
    assert absent.files == {}  # an optional ConfigMap not there yet: the predictor serves the base alone


def test_unsupported_formats_and_uris_are_named():
    with pytest.raises(Unservable, match="modelFormat.name 'sklearn'") as err:
        model_directory(isvc(fmt="sklearn")["spec"]["predictor"], None)
    assert err.value.reason == "NoSupportingRuntime"
    with pytest.raises(Unservable, match="storageUri 's3://b/m'") as err:
        model_directory(isvc(storage_uri="s3://b/m")["spec"]["predictor"], None)
    assert err.value.reason == "InvalidStorageUri"


def test_the_transformer_gets_its_mounts_and_the_arguments_kserve_appends(tmp_path):
    sources = {("ConfigMap", "policy-abc"): {"data": {"policy.json": "{}"}}}
    plan = transformer_plan(isvc(), sources, tmp_path / "t", tmp_path / "pvc", 9001, 9002).process
    policy = tmp_path / "t/volumes/guardrail-policy/policy.json"
    assert plan.argv == [sys.executable, "-m", "llmops_operator.servers.transformer", "--model_name", "chat",
                         "--predictor_host", "127.0.0.1:9001", "--http_port", "9002", "--enable_grpc", "false"]
    assert plan.env["LLMOPS_GUARDRAIL_POLICY"] == str(policy)
    assert plan.files == {policy: b"{}"}


def test_a_directory_holding_several_mounts_resolves_through_links(tmp_path):
    """The operator mounts each prompt version under LLMOPS_PROMPT_DIR: that parent directory must exist here."""
    obj = isvc()
    container = obj["spec"]["transformer"]["containers"][0]
    container["env"] += [{"name": "LLMOPS_PROMPT_DIR", "value": "/etc/llmops/prompts/versions"},
                         {"name": "LLMOPS_PROMPT_ROUTING", "value": "/etc/llmops/prompts/routing/routing.json"}]
    container["volumeMounts"] += [{"name": "prompt-stable", "mountPath": "/etc/llmops/prompts/versions/v1"},
                                  {"name": "prompt-routing", "mountPath": "/etc/llmops/prompts/routing"}]
    obj["spec"]["transformer"]["volumes"] += [{"name": "prompt-stable", "configMap": {"name": "p-v1"}},
                                              {"name": "prompt-routing", "configMap": {"name": "p-routing"}}]
    sources = {("ConfigMap", "p-v1"): {"data": {"prompt.json": "{}"}},
               ("ConfigMap", "p-routing"): {"data": {"routing.json": "{}"}}}
    plan = transformer_plan(obj, sources, tmp_path, tmp_path / "pvc", 9001, 9002)
    assert plan.process.env["LLMOPS_PROMPT_DIR"] == str(tmp_path / "fs/etc/llmops/prompts/versions")
    assert plan.process.env["LLMOPS_PROMPT_ROUTING"] == str(tmp_path / "volumes/prompt-routing/routing.json")
    assert plan.links == {tmp_path / "fs/etc/llmops/prompts/versions/v1": tmp_path / "volumes/prompt-stable"}


def test_files_are_rewritten_only_when_their_content_changed(tmp_path):
    target = tmp_path / "a" / "policy.json"
    assert write_files({target: b"1"}) == [target]
    assert write_files({target: b"1"}) == []
    assert write_files({target: b"2"}) == [target] and target.read_bytes() == b"2"


def ready(component: str, revision: int = 1, port: int = 9000) -> ComponentState:
    return ComponentState(component, READY, revision, url=f"http://127.0.0.1:{port}")


def conditions(status: dict) -> dict:
    return {c["type"]: c for c in status["conditions"]}


def test_ready_components_make_a_ready_service_routed_through_the_transformer():
    status = service_status(isvc(), {PREDICTOR: ready(PREDICTOR, port=9001), TRANSFORMER: ready(TRANSFORMER, port=9002)},
                            True, NOW)
    assert {t: c["status"] for t, c in conditions(status).items()} == \
           {"PredictorReady": "True", "TransformerReady": "True", "IngressReady": "True", "Ready": "True"}
    assert status["url"] == "http://127.0.0.1:9002" and status["address"] == {"url": "http://127.0.0.1:9002"}
    assert status["observedGeneration"] == 3
    predictor = status["components"]["predictor"]
    assert predictor["url"] == "http://127.0.0.1:9001"
    assert predictor["latestReadyRevision"] == "chat-predictor-00001"
    assert predictor["traffic"] == [{"revisionName": "chat-predictor-00001", "percent": 100, "latestRevision": True}]
    assert status["modelStatus"]["states"] == {"activeModelState": "Loaded", "targetModelState": "Loaded"}


def test_without_a_transformer_the_predictor_is_the_entry_and_a_stale_block_is_removed():
    status = service_status(isvc(transformer=False), {PREDICTOR: ready(PREDICTOR, port=9001)}, False, NOW)
    assert "TransformerReady" not in conditions(status)
    assert status["url"] == "http://127.0.0.1:9001"
    assert status["components"]["transformer"] is None  # a merge patch deletes it


def test_a_failed_predictor_is_reported_with_its_reason_and_the_service_is_not_ready():
    failed = ComponentState(PREDICTOR, FAILED, 1, reason="ModelLoadFailed", message="no config.json", since=NOW)
    status = service_status(isvc(), {PREDICTOR: failed}, True, LATER)
    found = conditions(status)
    assert (found["PredictorReady"]["status"], found["PredictorReady"]["reason"]) == ("False", "ModelLoadFailed")
    assert found["TransformerReady"]["status"] == "Unknown"
    assert found["Ready"]["status"] == "False" and found["Ready"]["message"] == "no config.json"
    assert status["url"] is None
    assert status["modelStatus"]["transitionStatus"] == "BlockedByFailedLoad"
    assert status["modelStatus"]["lastFailureInfo"] == {"reason": "ModelLoadFailed", "message": "no config.json",
                                                        "time": NOW}


def test_transition_times_move_only_when_a_condition_flips():
    starting = {PREDICTOR: ComponentState(PREDICTOR, STARTING, 1, url="http://127.0.0.1:9001")}
    first = service_status(isvc(transformer=False), starting, False, NOW)
    same = service_status({**isvc(transformer=False), "status": first}, starting, False, LATER)
    assert same == first
    flipped = service_status({**isvc(transformer=False), "status": first}, {PREDICTOR: ready(PREDICTOR)}, False, LATER)
    assert conditions(flipped)["PredictorReady"]["lastTransitionTime"] == LATER
