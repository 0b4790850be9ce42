"""The KServe `serving.kserve.io/v1beta1` InferenceService of an llmops.dev InferenceService (pure).

Field names follow KServe's v1beta1 CRD: spec.predictor.{minReplicas, maxReplicas, scaleMetric,
scaleTarget, canaryTrafficPercent, nodeSelector, tolerations, model.{modelFormat.name, runtime,
storageUri, resources}} and spec.transformer.{containers, volumes, annotations}. KServe appends
--model_name, --predictor_host and --http_port to the transformer container's args itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llmops_operator.api.v1alpha1.common import GROUP
from llmops_operator.api.v1alpha1.inferenceservice import InferenceService, ServingResources
from llmops_operator.api.v1alpha1.serving_engine import KEDA_METRICS
from llmops_operator.builders import labels
from llmops_operator.builders.adapters import ServedAdapter, add_vllm_adapters, mount_adapters_file
from llmops_operator.builders.guardrail_policy import POLICY_KEY
from llmops_operator.builders.naming import child_name, short_hash
from llmops_operator.builders.pod_security import harden_pod
from llmops_operator.builders.prompts import ROUTING_KEY
from llmops_operator.core.pricing import PriceCatalog
from llmops_operator.scoring.cost import gpu_price

KSERVE_API_VERSION = "serving.kserve.io/v1beta1"
CONTAINER_NAME = "kserve-container"
"""The container name KServe expects for a component's main container."""
TRANSFORMER_MODULE = "llmops_operator.servers.transformer"
GUARDRAIL_DIR = "/etc/llmops/guardrail"
PROMPT_DIR = "/etc/llmops/prompts"
POLICY_HASH = f"{GROUP}/guardrail-policy-hash"
"""Annotation: hash of the mounted guardrail policy; a new value rolls the service."""
PROMPT_HASH = f"{GROUP}/prompt-hash"
"""Annotation: hash of the mounted prompt versions; a new value rolls the service."""
STOP_ANNOTATION = "serving.kserve.io/stop"
"""KServe's stop switch (v0.15+): "true" deletes the components' pods and keeps the object; absent resumes it."""
GPU_RESOURCE = "nvidia.com/gpu"
NAME_LENGTH = 45
"""KServe and Knative derive `<name>-predictor-<namespace>` DNS labels: leave them room."""
KSERVE_COMPONENT = "inference-service"


@dataclass(frozen=True)
class PolicyMount:
    """The Guardrail's compiled policy, as its status names it."""

    config_map: str
    hash: str
    name: str = ""
    """The Guardrail's name: the policy id the runtime's guardrail events carry."""


@dataclass(frozen=True)
class PromptVersionMount:
    role: str  # "stable" | "canary"
    version: str
    config_map: str


@dataclass(frozen=True)
class PromptMount:
    """The PromptRelease's served versions and routing, as its status names them."""

    versions: tuple[PromptVersionMount, ...]
    routing_config_map: str

    @property
    def hash(self) -> str:
        return short_hash([[v.version, v.config_map] for v in self.versions])


def kserve_name(obj: InferenceService) -> str:
    return child_name(obj.name, max_length=NAME_LENGTH)


def _requests(cpu: Any, memory: Any, gpus: int = 0) -> dict[str, Any]:
    amounts: dict[str, Any] = {"cpu": str(cpu), "memory": str(memory)}
    if gpus:
        amounts[GPU_RESOURCE] = str(gpus)
    return {"requests": dict(amounts), "limits": dict(amounts)}


def _scaling(obj: InferenceService) -> dict[str, Any]:
    spec = obj.spec
    fields: dict[str, Any] = {"minReplicas": spec.replicas.min, "maxReplicas": spec.replicas.max}
    if spec.scaling and spec.scaling.metric not in KEDA_METRICS:  # KEDA's: builders/engine.py
        fields |= {"scaleMetric": spec.scaling.metric, "scaleTarget": spec.scaling.target}
    return fields


def build_predictor(obj: InferenceService, model_uri: str, catalog: PriceCatalog,
                    adapters: tuple[ServedAdapter, ...] = ()) -> dict[str, Any]:
    """`adapters` (spec.adapters that have an adapter to serve) become vLLM engine arguments on a GPU; on every
    runtime the adapters ConfigMap is mounted, which the CPU predictor reloads while it runs (builders/adapters.py)."""
    spec = obj.spec
    res = spec.resources
    model: dict[str, Any] = {"modelFormat": {"name": spec.model.format}, "storageUri": model_uri,
                             "resources": _requests(res.cpu, res.memory, res.gpus)}
    if spec.model.runtime:
        model["runtime"] = spec.model.runtime
    predictor: dict[str, Any] = {**_scaling(obj), "model": model}
    if spec.adapters:
        mount_adapters_file(obj, predictor)
        if res.gpus:
            add_vllm_adapters(predictor, list(adapters))
    harden_pod(predictor, calls_api=False, containers=[model])
    if spec.canary_traffic_percent is not None:
        predictor["canaryTrafficPercent"] = spec.canary_traffic_percent
    predictor.update(gpu_placement(res, catalog))
    return predictor


def gpu_placement(res: ServingResources, catalog: PriceCatalog) -> dict[str, Any]:
    """The nodeSelector and tolerations the price catalog gives the GPU type, for a pod that asks for GPUs."""
    if not res.gpus:
        return {}
    price = gpu_price(catalog, res.gpu_type)
    placement: dict[str, Any] = {}
    if price.node_selector:
        placement["nodeSelector"] = dict(price.node_selector)
    if price.tolerations:
        placement["tolerations"] = list(price.tolerations)
    return placement


def _mounts(policy: PolicyMount | None, prompts: PromptMount | None
            ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """(volumes, volumeMounts, env) that put the policy and prompt versions in the transformer."""
    volumes, mounts, env = [], [], []

    def mount(volume: str, config_map: str, path: str) -> None:
        volumes.append({"name": volume, "configMap": {"name": config_map}})
        mounts.append({"name": volume, "mountPath": path, "readOnly": True})

    if policy:
        mount("guardrail-policy", policy.config_map, GUARDRAIL_DIR)
        env.append({"name": "LLMOPS_GUARDRAIL_POLICY", "value": f"{GUARDRAIL_DIR}/{POLICY_KEY}"})
        if policy.name:
            env.append({"name": "LLMOPS_GUARDRAIL_POLICY_ID", "value": policy.name})
    if prompts:
        for version in prompts.versions:
            mount(f"prompt-{version.role}", version.config_map, f"{PROMPT_DIR}/versions/{version.version}")
        mount("prompt-routing", prompts.routing_config_map, f"{PROMPT_DIR}/routing")
        env += [{"name": "LLMOPS_PROMPT_DIR", "value": f"{PROMPT_DIR}/versions"},
                {"name": "LLMOPS_PROMPT_ROUTING", "value": f"{PROMPT_DIR}/routing/{ROUTING_KEY}"}]
    return volumes, mounts, env


def _hash_annotations(policy: PolicyMount | None, prompts: PromptMount | None) -> dict[str, str]:
    annotations = {}
    if policy:
        annotations[POLICY_HASH] = policy.hash
    if prompts:
        annotations[PROMPT_HASH] = prompts.hash
    return annotations


def build_transformer(obj: InferenceService, image: str, policy: PolicyMount | None,
                      prompts: PromptMount | None) -> dict[str, Any]:
    """The guardrail runtime as a KServe custom transformer, with the policy and prompts mounted."""
    settings = obj.spec.transformer
    cpu, memory = (settings.cpu, settings.memory) if settings else ("500m", "1Gi")
    volumes, mounts, env = _mounts(policy, prompts)
    container: dict[str, Any] = {
        "name": CONTAINER_NAME,
        "image": (settings.image if settings and settings.image else image),
        "command": ["python", "-m", TRANSFORMER_MODULE],
        "env": [{"name": "LLMOPS_SERVICE", "value": obj.name}, *env],
        "resources": _requests(cpu, memory),
    }
    if mounts:
        container["volumeMounts"] = mounts
    transformer: dict[str, Any] = harden_pod({**_scaling(obj), "containers": [container]}, calls_api=False)
    if volumes:
        transformer["volumes"] = volumes
    annotations = _hash_annotations(policy, prompts)
    if annotations:
        transformer["annotations"] = annotations
    return transformer


def wants_transformer(obj: InferenceService) -> bool:
    spec = obj.spec
    return bool(spec.guardrail_ref or spec.prompt_release_ref or spec.transformer)


def build_kserve_inference_service(obj: InferenceService, model_uri: str, image: str, catalog: PriceCatalog,
                                   policy: PolicyMount | None = None,
                                   prompts: PromptMount | None = None, stopped: bool = False,
                                   adapters: tuple[ServedAdapter, ...] = ()) -> dict[str, Any]:
    """The KServe InferenceService: predictor, and the guardrail transformer when one is wanted; `stopped` (the
    budget's Stop action) adds KServe's stop annotation."""
    metadata: dict[str, Any] = {"name": kserve_name(obj), "namespace": obj.namespace,
                                "labels": labels.child_labels(obj, KSERVE_COMPONENT)}
    annotations = _hash_annotations(policy, prompts)
    if stopped:
        annotations[STOP_ANNOTATION] = "true"
    if annotations:
        metadata["annotations"] = annotations
    spec: dict[str, Any] = {"predictor": build_predictor(obj, model_uri, catalog, adapters)}
    if wants_transformer(obj):
        spec["transformer"] = build_transformer(obj, image, policy, prompts)
    return {"apiVersion": KSERVE_API_VERSION, "kind": "InferenceService", "metadata": metadata, "spec": spec}
