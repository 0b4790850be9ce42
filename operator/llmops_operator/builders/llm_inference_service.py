"""The `serving.kserve.io/v1alpha1` LLMInferenceService of an InferenceService with spec.deployment
llmInferenceService, and the guardrail gateway in front of it (pure).

Field names follow KServe's LLMInferenceService CRD (v0.20): spec.model.{uri,name}, spec.replicas,
spec.template (a PodSpec whose container `main` is merged into KServe's vLLM template, which appends
$VLLM_ADDITIONAL_ARGS to `vllm serve`), spec.parallelism.tensor, spec.router.{route,gateway,scheduler} (empty
objects ask KServe to manage the HTTPRoute, the Gateway binding and the inference scheduler with its
InferencePool), and spec.scaling.{minReplicas,maxReplicas,wva.keda}.

An LLMInferenceService has no transformer slot. The guardrail runs as a gateway: a Deployment of the same
runtime (servers/transformer.py) and its Service, whose upstream is KServe's route for the model,
`http://<gateway address>/<namespace>/<name>/v1/...`, so requests still go through KServe's scheduler.
"""

from __future__ import annotations

from typing import Any

from llmops_operator.api.v1alpha1.inferenceservice import InferenceService
from llmops_operator.builders import labels
from llmops_operator.builders.engine import keda_metric, vllm_flags
from llmops_operator.builders.kserve import (
    CONTAINER_NAME, PolicyMount, PromptMount, TRANSFORMER_MODULE, _hash_annotations, _mounts, _requests,
    gpu_placement, kserve_name,
)
from llmops_operator.builders.naming import owned_name
from llmops_operator.builders.pod_security import harden_container, harden_pod
from llmops_operator.core.pricing import PriceCatalog

LLM_API_VERSION = "serving.kserve.io/v1alpha1"
LLM_COMPONENT = "llm-inference-service"
GATEWAY_COMPONENT = "guardrail-gateway"
GATEWAY_PORT = 8080
MAIN_CONTAINER = "main"
"""The container name KServe's LLMInferenceService templates give vLLM."""


def _template(obj: InferenceService, catalog: PriceCatalog, tensor_parallel: int) -> dict[str, Any]:
    res = obj.spec.resources
    flags = [f for f in vllm_flags(obj) if not f.startswith("--tensor-parallel-size")]
    container: dict[str, Any] = {"name": MAIN_CONTAINER, "resources": _requests(res.cpu, res.memory, res.gpus)}
    if flags:
        container["env"] = [{"name": "VLLM_ADDITIONAL_ARGS", "value": " ".join(flags)}]
    return {"containers": [container], **gpu_placement(res, catalog)}


def _scaling(obj: InferenceService, stopped: bool) -> dict[str, Any]:
    """replicas, or scaling through the Workload Variant Autoscaler (KEDA) when the service may grow."""
    replicas = obj.spec.replicas
    if stopped:
        return {"replicas": 0}
    if keda_metric(obj) is None or replicas.min == replicas.max:
        return {"replicas": replicas.min}
    return {"scaling": {"minReplicas": replicas.min, "maxReplicas": replicas.max, "wva": {"keda": {}}}}


def build_llm_inference_service(obj: InferenceService, model_uri: str, catalog: PriceCatalog,
                                stopped: bool = False) -> dict[str, Any]:
    spec = obj.spec
    tensor_parallel = (spec.engine_args.tensor_parallel_size if spec.engine_args else None) or spec.resources.gpus
    body: dict[str, Any] = {
        "model": {"uri": model_uri, "name": obj.name},
        **_scaling(obj, stopped),
        "template": _template(obj, catalog, tensor_parallel),
        "router": {"route": {}, "gateway": {}, "scheduler": {}},
    }
    if tensor_parallel and tensor_parallel > 1:
        body["parallelism"] = {"tensor": tensor_parallel}
    return {"apiVersion": LLM_API_VERSION, "kind": "LLMInferenceService",
            "metadata": {"name": kserve_name(obj), "namespace": obj.namespace,
                         "labels": labels.child_labels(obj, LLM_COMPONENT)},
            "spec": body}


def gateway_selector(obj: InferenceService) -> dict[str, str]:
    return {labels.owner_label(obj): obj.name, labels.COMPONENT: GATEWAY_COMPONENT}


def gateway_name(obj: InferenceService) -> str:
    return owned_name(obj, "gateway")


def upstream_prefix(obj: InferenceService) -> str:
    """The path KServe's HTTPRoute gives the model on its Gateway (rewritten to vLLM's /v1/...)."""
    return f"/{obj.namespace}/{kserve_name(obj)}"


def build_gateway_deployment(obj: InferenceService, image: str, gateway_address: str,
                             policy: PolicyMount | None, prompts: PromptMount | None,
                             stopped: bool = False) -> dict[str, Any]:
    """The guardrail runtime as a Deployment in front of the LLMInferenceService's route."""
    settings = obj.spec.transformer
    cpu, memory = (settings.cpu, settings.memory) if settings else ("500m", "1Gi")
    volumes, mounts, env = _mounts(policy, prompts)
    container: dict[str, Any] = {
        "name": CONTAINER_NAME, "image": (settings.image if settings and settings.image else image),
        "command": ["python", "-m", TRANSFORMER_MODULE],
        "args": ["--model_name", obj.name, "--predictor_host", gateway_address, "--http_port", str(GATEWAY_PORT)],
        "env": [{"name": "LLMOPS_SERVICE", "value": obj.name},
                {"name": "LLMOPS_PREDICTOR_PATH_PREFIX", "value": upstream_prefix(obj)}, *env],
        "ports": [{"name": "http", "containerPort": GATEWAY_PORT}],
        "readinessProbe": {"httpGet": {"path": f"/v1/models/{obj.name}", "port": GATEWAY_PORT}},
        "resources": _requests(cpu, memory),
    }
    if mounts:
        container["volumeMounts"] = mounts
    pod = harden_pod({"containers": [harden_container(container)]}, calls_api=False)
    if volumes:
        pod["volumes"] = volumes
    selector = gateway_selector(obj)
    pod_labels = labels.child_labels(obj, GATEWAY_COMPONENT)
    template: dict[str, Any] = {"metadata": {"labels": pod_labels}, "spec": pod}
    if annotations := _hash_annotations(policy, prompts):
        template["metadata"]["annotations"] = annotations
    replicas = 0 if stopped else max(obj.spec.replicas.min, 1)
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": gateway_name(obj), "namespace": obj.namespace, "labels": pod_labels},
            "spec": {"replicas": replicas, "selector": {"matchLabels": selector}, "template": template}}


def build_gateway_service(obj: InferenceService) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": gateway_name(obj), "namespace": obj.namespace,
                         "labels": labels.child_labels(obj, GATEWAY_COMPONENT)},
            "spec": {"selector": gateway_selector(obj),
                     "ports": [{"name": "http", "port": 80, "targetPort": GATEWAY_PORT}]}}


def gateway_url(obj: InferenceService) -> str:
    return f"http://{gateway_name(obj)}.{obj.namespace}.svc.cluster.local"
