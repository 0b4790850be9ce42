"""The serving engine of an InferenceService: runtime, engine arguments, LLM autoscaling, the LLMInferenceService
target with its guardrail gateway, and the model cache (builders and status reducers on real model instances)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from llmops_operator.api.v1alpha1 import InferenceService
from llmops_operator.controllers.inferenceservice import InferenceServiceReconciler
from llmops_operator.core.contract import Context, InvalidSpec, parse
from llmops_operator.core.settings import Settings
from llmops_operator.backends.prometheus import parse_exposition
from llmops_operator.scoring.serving_metrics import latency_block

from spec_options import with_

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=timezone.utc)
URI = "hf://org/model"
GPUS = with_("resources", {"gpus": 2, "gpuType": "nvidia-l4", "cpu": "8", "memory": "32Gi"})


def ctx(installed: frozenset[str] = frozenset(), **settings) -> Context:
    config = Settings(runtime_image="registry.example/llmops:1.0", **settings)
    return Context(settings=config, catalog=config.catalog, now=NOW, installed=installed)


def service(*options) -> InferenceService:
    spec = {"model": {"uri": URI}}
    for option in options:
        option(spec)
    return parse(InferenceService, {"apiVersion": "llmops.dev/v1alpha1", "kind": "InferenceService",
                                    "metadata": {"name": "chat", "namespace": "ml", "uid": "u1"}, "spec": spec})


def children(obj, context: Context | None = None) -> list[dict]:
    return InferenceServiceReconciler().children(obj, context or ctx(), {})


def by_kind(items: list[dict]) -> dict[str, dict]:
    return {c["kind"]: c for c in items}


# ----- runtime and engine arguments ------------------------------------------------------------------

def test_gpus_choose_vllm_with_tensor_parallelism_over_every_gpu():
    obj = service(GPUS, with_("engineArgs", {"maxModelLength": 8192, "gpuMemoryUtilization": 0.85,
                                            "quantization": "awq", "enablePrefixCaching": True,
                                            "kvCacheDtype": "fp8", "maxNumSeqs": 64}))
    model = by_kind(children(obj))["InferenceService"]["spec"]["predictor"]["model"]
    assert model["args"] == ["--backend=vllm", "--max_model_len=8192", "--tensor-parallel-size=2",
                             "--gpu-memory-utilization=0.85", "--quantization=awq", "--kv-cache-dtype=fp8",
                             "--max-num-seqs=64", "--enable-prefix-caching"]
    assert model["resources"]["limits"]["nvidia.com/gpu"] == "2"


def test_cpu_keeps_the_transformers_backend():
    obj = service(with_("engineArgs", {"maxModelLength": 512, "dtype": "float32"}))
    model = by_kind(children(obj))["InferenceService"]["spec"]["predictor"]["model"]
    assert model["args"] == ["--backend=huggingface", "--max_model_len=512", "--dtype=float32"]


def test_explicit_runtime_wins_over_the_accelerator():
    obj = service(GPUS, with_("runtime", "huggingface"))
    assert by_kind(children(obj))["InferenceService"]["spec"]["predictor"]["model"]["args"] == [
        "--backend=huggingface"]


def test_other_formats_get_no_backend_arguments():
    obj = service(with_("model.format", "sklearn"))
    assert "args" not in by_kind(children(obj))["InferenceService"]["spec"]["predictor"]["model"]


@pytest.mark.parametrize("options, message", [
    ([with_("engineArgs", {"gpuMemoryUtilization": 0.8})],
     "engineArgs.gpuMemoryUtilization is a vLLM argument: set runtime vllm"),
    ([with_("engineArgs", {"gpuMemoryUtilization": 1.5})], "spec.engineArgs.gpuMemoryUtilization: Input should be"),
    ([with_("engineArgs", {"maxModelLength": 8})], "spec.engineArgs.maxModelLength: Input should be greater"),
    ([with_("engineArgs", {"quantization": "int3"})], "spec.engineArgs.quantization: Input should be"),
    ([GPUS, with_("engineArgs", {"tensorParallelSize": 4})],
     "engineArgs.tensorParallelSize 4 exceeds the 2 GPUs of resources.gpus"),
    ([with_("model.format", "onnx"), with_("runtime", "vllm")], "runtime and engineArgs need model.format"),
    ([with_("scaling", {"metric": "queueDepth", "target": 4})], "scaling.metric queueDepth reads vLLM's gauges"),
    ([with_("deployment", "llmInferenceService")], "deployment llmInferenceService serves with vLLM"),
    ([GPUS, with_("deployment", "llmInferenceService"), with_("canaryTrafficPercent", 10)],
     "canaryTrafficPercent: an LLMInferenceService has no revision traffic split"),
    ([GPUS, with_("deployment", "llmInferenceService"), with_("scaling", {"metric": "rps"})],
     "scaling.metric rps: an LLMInferenceService scales on vLLM's saturation"),
    ([with_("model.cache", {"size": "20Gi", "nodeGroups": []})], "spec.model.cache.nodeGroups: List should have"),
])
def test_engine_mistakes_name_the_field(options, message):
    with pytest.raises(InvalidSpec) as err:
        service(*options)
    assert message in str(err.value)


# ----- autoscaling on vLLM's gauges ------------------------------------------------------------------

def test_queue_depth_scales_through_keda_on_vllm_waiting_requests():
    obj = service(GPUS, with_("replicas", {"min": 0, "max": 6}), with_("scaling", {"metric": "queueDepth",
                                                                                  "target": 4}))
    isvc = by_kind(children(obj, ctx(prometheus_url="http://prom.monitoring:9090")))["InferenceService"]
    predictor = isvc["spec"]["predictor"]
    assert isvc["metadata"]["annotations"] == {"serving.kserve.io/autoscalerClass": "keda",
                                               "serving.kserve.io/deploymentMode": "Standard"}
    assert (predictor["minReplicas"], predictor["maxReplicas"]) == (0, 6) and "scaleMetric" not in predictor
    assert predictor["autoScaling"] == {"metrics": [{"type": "External", "external": {
        "metric": {"backend": "prometheus", "serverAddress": "http://prom.monitoring:9090",
                   "query": 'sum(vllm:num_requests_waiting{namespace="ml",pod=~"chat-predictor-.*"})'},
        "target": {"type": "AverageValue", "averageValue": "4"}}}]}


def test_in_flight_requests_read_the_running_gauge_and_need_prometheus():
    obj = service(GPUS, with_("scaling", {"metric": "inFlightRequests", "target": 16}))
    isvc = by_kind(children(obj, ctx(prometheus_url="http://prom:9090")))["InferenceService"]
    query = isvc["spec"]["predictor"]["autoScaling"]["metrics"][0]["external"]["metric"]["query"]
    assert query.startswith("sum(vllm:num_requests_running{")
    with pytest.raises(InvalidSpec, match="LLMOPS_PROMETHEUS_URL"):
        InferenceServiceReconciler().check(obj, ctx())


def test_knative_metrics_stay_on_kserve_fields():
    obj = service(with_("scaling", {"metric": "concurrency", "target": 2}))
    predictor = by_kind(children(obj))["InferenceService"]["spec"]["predictor"]
    assert (predictor["scaleMetric"], predictor["scaleTarget"]) == ("concurrency", 2)
    assert "autoScaling" not in predictor


# ----- the LLMInferenceService target ----------------------------------------------------------------

def llm_service(*options) -> InferenceService:
    return service(GPUS, with_("deployment", "llmInferenceService"), with_("transformer", {"cpu": "1"}), *options)


def test_llm_inference_service_carries_model_router_parallelism_and_engine_args():
    obj = llm_service(with_("engineArgs", {"maxModelLength": 4096, "enablePrefixCaching": True}))
    rendered = children(obj)
    assert [c["kind"] for c in rendered] == ["LLMInferenceService", "Deployment", "Service"]
    llm = rendered[0]
    assert llm["apiVersion"] == "serving.kserve.io/v1alpha1" and llm["metadata"]["name"] == "chat"
    spec = llm["spec"]
    assert spec["model"] == {"uri": URI, "name": "chat"} and spec["replicas"] == 1
    assert spec["router"] == {"route": {}, "gateway": {}, "scheduler": {}}
    assert spec["parallelism"] == {"tensor": 2}
    main = spec["template"]["containers"][0]
    assert main["name"] == "main" and main["resources"]["limits"]["nvidia.com/gpu"] == "2"
    assert main["env"] == [{"name": "VLLM_ADDITIONAL_ARGS",
                            "value": "--max-model-len=4096 --enable-prefix-caching"}]
    assert spec["template"]["nodeSelector"]


def test_llm_inference_service_scales_through_the_variant_autoscaler():
    obj = llm_service(with_("replicas", {"min": 0, "max": 8}), with_("scaling", {"metric": "queueDepth"}))
    spec = children(obj)[0]["spec"]
    assert "replicas" not in spec
    assert spec["scaling"] == {"minReplicas": 0, "maxReplicas": 8, "wva": {"keda": {}}}


def test_guardrail_gateway_calls_the_models_route_through_kserves_gateway():
    obj = llm_service(with_("replicas", {"min": 2, "max": 2}))
    _, deployment, svc = children(obj, ctx(llm_gateway_address="gw.kserve:80"))
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["python", "-m", "llmops_operator.servers.transformer"]
    assert container["args"] == ["--model_name", "chat", "--predictor_host", "gw.kserve:80", "--http_port", "8080"]
    assert {"name": "LLMOPS_PREDICTOR_PATH_PREFIX", "value": "/ml/chat"} in container["env"]
    assert container["image"] == "registry.example/llmops:1.0" and deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["template"]["spec"]["automountServiceAccountToken"] is False
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert svc["spec"]["selector"] == selector
    assert selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    assert svc["spec"]["ports"] == [{"name": "http", "port": 80, "targetPort": 8080}]


# ----- the model cache -------------------------------------------------------------------------------

CACHE = with_("model.cache", {"size": "40Gi", "nodeGroups": ["gpu-a100"], "storageClassName": "rwx"})


def test_without_kserves_local_model_cache_a_claim_is_filled_once_by_a_job():
    items = children(service(GPUS, CACHE))
    assert [c["kind"] for c in items] == ["PersistentVolumeClaim", "Job", "InferenceService"]
    claim, job, isvc = items
    assert claim["spec"] == {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "40Gi"}},
                             "storageClassName": "rwx"}
    assert job["metadata"]["name"] == claim["metadata"]["name"]
    fill = job["spec"]["template"]["spec"]["containers"][0]
    assert fill["image"] == "kserve/storage-initializer:v0.20.0" and fill["command"][-1] == URI
    assert "touch /cache/.complete" in fill["command"][2]
    predictor = isvc["spec"]["predictor"]
    assert predictor["model"]["storageUri"] == f"pvc://{claim['metadata']['name']}/model"
    assert predictor["initContainers"][0]["name"] == "wait-for-model-cache"
    assert predictor["volumes"] == [{"name": "model-cache", "persistentVolumeClaim": {
        "claimName": claim["metadata"]["name"], "readOnly": True}}]


def test_kserves_local_model_cache_is_used_where_installed():
    items = children(service(GPUS, CACHE), ctx(frozenset({"localmodelnamespacecaches.serving.kserve.io"})))
    cache, isvc = items
    assert cache["kind"] == "LocalModelNamespaceCache"
    assert cache["spec"] == {"sourceModelUri": URI, "modelSize": "40Gi", "nodeGroups": ["gpu-a100"]}
    assert isvc["spec"]["predictor"]["model"]["storageUri"] == URI
    assert "initContainers" not in isvc["spec"]["predictor"]


def test_a_new_model_is_a_new_cache():
    first = children(service(GPUS, CACHE))[0]["metadata"]["name"]
    second = children(service(GPUS, CACHE, with_("model.uri", "hf://org/other")))[0]["metadata"]["name"]
    assert first != second and first.startswith("chat-lsvc-cache-")


# ----- status -----------------------------------------------------------------------------------------

def observe(obj, live, context=None):
    return InferenceServiceReconciler().status(obj, live, None, context or ctx(), {})


def kserve_ready(body: dict, *types: str) -> dict:
    return {**body, "status": {"url": "http://chat.ml", "conditions": [
        {"type": t, "status": "True"} for t in types]}}


def test_status_says_when_the_cache_claim_is_filled():
    obj = service(GPUS, CACHE)
    claim, job, isvc = children(obj)
    isvc = kserve_ready(isvc, "PredictorReady", "Ready")
    filling = observe(obj, [claim, {**job, "status": {"active": 1}}, isvc])
    cached = next(c for c in filling.conditions if c.type == "ModelCached")
    assert (cached.status, cached.reason) == ("False", "Filling")
    assert filling.fields["cache"] == {"kind": "PersistentVolumeClaim", "name": claim["metadata"]["name"],
                                       "filled": False}
    assert next(c for c in filling.conditions if c.type == "Ready").status == "False"
    assert filling.fields["runtime"] == "vllm"
    done = observe(obj, [claim, {**job, "status": {"succeeded": 1}}, isvc])
    assert done.fields["cache"]["filled"] is True
    assert next(c for c in done.conditions if c.type == "Ready").status == "True"


def test_a_failed_fill_says_why():
    obj = service(GPUS, CACHE)
    claim, job, isvc = children(obj)
    failed = {**job, "status": {"failed": 5, "conditions": [
        {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "403 from the bucket"}]}}
    cached = next(c for c in observe(obj, [claim, failed, isvc]).conditions if c.type == "ModelCached")
    assert (cached.reason, cached.message) == ("FillFailed", f"Job {job['metadata']['name']} failed: 403 from "
                                                             f"the bucket")


def test_local_model_cache_is_filled_when_every_node_copy_is():
    context = ctx(frozenset({"localmodelnamespacecaches.serving.kserve.io"}))
    obj = service(GPUS, CACHE)
    cache, isvc = children(obj, context)
    partial = observe(obj, [{**cache, "status": {"copies": {"total": 3, "available": 1}}}, isvc], context)
    assert partial.fields["cache"]["filled"] is False
    full = observe(obj, [{**cache, "status": {"copies": {"total": 3, "available": 3}}}, isvc], context)
    assert full.fields["cache"] == {"kind": "LocalModelNamespaceCache", "name": cache["metadata"]["name"],
                                    "filled": True}


def test_without_a_guardrail_there_is_no_gateway_and_kserves_url_is_served():
    obj = llm_service(with_("transformer", None))
    [llm] = children(obj)
    serving = observe(obj, [kserve_ready(llm, "MainWorkloadReady", "Ready")])
    assert next(c for c in serving.conditions if c.type == "Ready").status == "True"
    assert serving.fields["url"] == "http://chat.ml"


def test_llm_inference_service_is_ready_when_vllm_and_the_gateway_are():
    obj = llm_service()
    llm, deployment, _ = children(obj)
    llm = kserve_ready(llm, "MainWorkloadReady", "Ready")
    starting = observe(obj, [llm, deployment])
    ready = next(c for c in starting.conditions if c.type == "Ready")
    assert (ready.status, ready.reason) == ("Unknown", "GatewayStarting")
    assert starting.phase == "Deploying"
    assert "url" not in starting.fields
    available = {**deployment, "status": {"conditions": [{"type": "Available", "status": "True"}]}}
    serving = observe(obj, [llm, available])
    assert next(c for c in serving.conditions if c.type == "Ready").status == "True"
    assert serving.fields["url"] == "http://chat-lsvc-gateway.ml.svc.cluster.local"
    assert serving.phase == "Ready" and serving.fields["kserveService"] == "chat"


# ----- latency from the GenAI measurements ------------------------------------------------------------

def test_latency_reads_time_to_first_token_summed_over_models():
    lines = []
    for model, counts in (("a", (2, 4, 4)), ("b", (0, 2, 4))):
        labels = f'gen_ai_operation_name="chat",gen_ai_provider_name="llmops",gen_ai_request_model="{model}"'
        for le, count in zip(("0.1", "0.25", "+Inf"), counts):
            lines.append(f'gen_ai_server_time_to_first_token_seconds_bucket{{{labels},le="{le}"}} {count}')
        lines.append(f'gen_ai_server_time_per_output_token_seconds_bucket{{{labels},le="0.01"}} {counts[2]}')
        lines.append(f'gen_ai_server_time_per_output_token_seconds_bucket{{{labels},le="+Inf"}} {counts[2]}')
    sample = parse_exposition("\n".join(["# TYPE gen_ai_server_time_to_first_token_seconds histogram",
                                         *[x for x in lines if "first_token" in x],
                                         "# TYPE gen_ai_server_time_per_output_token_seconds histogram",
                                         *[x for x in lines if "per_output" in x]]) + "\n")
    assert sample.histograms["gen_ai_server_time_to_first_token_seconds"] == [(0.1, 2.0), (0.25, 6.0),
                                                                              (float("inf"), 8.0)]
    block = latency_block(sample)
    assert block == {"timeToFirstTokenP50Ms": 175.0, "timeToFirstTokenP99Ms": 250.0,
                     "timePerOutputTokenP50Ms": 5.0}


def test_every_vllm_switch_has_its_flag():
    obj = service(GPUS, with_("engineArgs", {"dtype": "bfloat16", "tensorParallelSize": 1, "enforceEager": True,
                                            "enablePrefixCaching": False, "maxNumBatchedTokens": 4096}))
    args = by_kind(children(obj))["InferenceService"]["spec"]["predictor"]["model"]["args"]
    assert args == ["--backend=vllm", "--dtype=bfloat16", "--max-num-batched-tokens=4096",
                    "--no-enable-prefix-caching", "--enforce-eager"]


def test_a_budget_stop_takes_the_llm_service_and_its_gateway_to_zero():
    from llmops_operator.builders.llm_inference_service import (
        build_gateway_deployment, build_llm_inference_service,
    )

    obj = llm_service(with_("replicas", {"min": 1, "max": 4}), with_("scaling", {"metric": "queueDepth"}))
    config = ctx()
    llm = build_llm_inference_service(obj, URI, config.catalog, stopped=True)
    assert llm["spec"]["replicas"] == 0 and "scaling" not in llm["spec"]
    gateway = build_gateway_deployment(obj, "img", "gw", None, None, stopped=True)
    assert gateway["spec"]["replicas"] == 0


def test_adapters_keep_their_vllm_arguments_and_claims_beside_the_engine_and_the_cache():
    adapters = [{"name": "support", "fineTuneRef": {"name": "ft-support"}}]
    obj = service(GPUS, CACHE, with_("adapters", adapters), with_("engineArgs", {"maxModelLength": 4096}))
    refs = {("FineTune", "ft-support"): {"spec": {"method": "lora", "lora": {"r": 8}}, "status": {
        "phase": "Succeeded", "outputUri": "pvc://models/support",
        "conditions": [{"type": "Ready", "status": "True", "reason": "Succeeded"}]}}}
    items = InferenceServiceReconciler().children(obj, ctx(), refs)
    assert [c["kind"] for c in items] == ["PersistentVolumeClaim", "Job", "InferenceService", "ConfigMap"]
    predictor = by_kind(items)["InferenceService"]["spec"]["predictor"]
    args = predictor["model"]["args"]
    assert args[:3] == ["--backend=vllm", "--max_model_len=4096", "--tensor-parallel-size=2"]
    assert "--enable-lora" in args
    claims = {v["persistentVolumeClaim"]["claimName"] for v in predictor["volumes"] if "persistentVolumeClaim" in v}
    assert claims == {"models", items[0]["metadata"]["name"]}


def test_adapters_on_an_llm_inference_service_are_refused():
    with pytest.raises(InvalidSpec, match="adapters are served on deployment inferenceService only"):
        llm_service(with_("adapters", [{"name": "support", "fineTuneRef": {"name": "ft-support"}}]))
