"""Every child of an InferenceService, for either deployment target, with its model cache (pure).

- inferenceService (default): the KServe v1beta1 InferenceService (predictor with the runtime's backend and engine
  arguments, guardrail transformer), its predictor NetworkPolicy;
- llmInferenceService: the KServe LLMInferenceService, first (so that a cluster without its CRD stops the pass
  with EngineMissing before anything else is written), then, when a guardrail, prompt release or transformer
  settings ask for the runtime, the guardrail gateway Deployment and Service;
- with spec.model.cache: the LocalModelNamespaceCache, or the claim and its fill Job, before the service.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llmops_operator.api.v1alpha1.inferenceservice import InferenceService
from llmops_operator.builders import model_cache
from llmops_operator.builders.adapters import ServedAdapter, build_adapters_config_map
from llmops_operator.builders.engine import apply_engine
from llmops_operator.builders.kserve import (
    PolicyMount, PromptMount, build_kserve_inference_service, wants_transformer,
)
from llmops_operator.builders.llm_inference_service import (
    build_gateway_deployment, build_gateway_service, build_llm_inference_service,
)
from llmops_operator.builders.network import predictor_network_policy
from llmops_operator.core.contract import Context

LOCAL_MODEL_CACHE_CRD = "localmodelnamespacecaches.serving.kserve.io"


@dataclass(frozen=True)
class Mounts:
    """What the references resolved to: the model to serve, the policy and prompts to mount."""

    model_uri: str
    policy: PolicyMount | None = None
    prompts: PromptMount | None = None
    adapters: tuple[ServedAdapter, ...] = ()
    """spec.adapters that have an adapter to serve (builders/adapters.py)."""


def cache_plan(obj: InferenceService, model_uri: str, ctx: Context) -> model_cache.CachePlan | None:
    return model_cache.plan(obj, model_uri, LOCAL_MODEL_CACHE_CRD in ctx.installed)


def serving_children(obj: InferenceService, ctx: Context, mounts: Mounts, stopped: bool) -> list[dict[str, Any]]:
    settings = ctx.settings
    cache = cache_plan(obj, mounts.model_uri, ctx)
    storage_uri = cache.storage_uri if cache else mounts.model_uri
    children = model_cache.cache_children(obj, cache, mounts.model_uri, settings.storage_initializer_image)
    if obj.spec.deployment == "llmInferenceService":
        llm = build_llm_inference_service(obj, storage_uri, ctx.catalog, stopped=stopped)
        if cache and cache.kind == "PersistentVolumeClaim":
            model_cache.wait_for_fill(llm["spec"]["template"], cache, settings.storage_initializer_image)
        if not wants_transformer(obj):
            return [llm, *children]
        gateway = build_gateway_deployment(obj, settings.runtime_image, settings.llm_gateway_address,
                                           mounts.policy, mounts.prompts, stopped=stopped)
        return [llm, *children, gateway, build_gateway_service(obj)]
    isvc = build_kserve_inference_service(obj, storage_uri, settings.runtime_image, ctx.catalog, mounts.policy,
                                          mounts.prompts, stopped=stopped, adapters=mounts.adapters)
    apply_engine(isvc, obj, settings.prometheus_url)
    if cache and cache.kind == "PersistentVolumeClaim":
        model_cache.wait_for_fill(isvc["spec"]["predictor"], cache, settings.storage_initializer_image)
    children.append(isvc)
    if obj.spec.adapters:
        children.append(build_adapters_config_map(obj, list(mounts.adapters)))
    if settings.network_policies and "transformer" in isvc["spec"]:
        children.append(predictor_network_policy(obj, isvc["metadata"]["name"], settings.control_plane_namespaces))
    return children
