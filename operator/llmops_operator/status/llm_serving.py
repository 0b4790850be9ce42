"""Status of an InferenceService served by an LLMInferenceService, and of any service's model cache (pure).

Conditions, beside those of status/inferenceservice.py:
- ModelReady (llmInferenceService): mirrors KServe's MainWorkloadReady (the vLLM pods). Counts toward Ready.
- GuardrailAttached / PromptAttached (llmInferenceService, when asked for): mirror the guardrail gateway
  Deployment's Available condition, since the gateway enforces the policy. Count toward Ready.
- ModelCached: only with spec.model.cache. True once the fill Job succeeded, or KServe reports every node copy of
  the LocalModelNamespaceCache downloaded; False (reason Filling, FillFailed) until then, saying where it stands.
  Counts toward Ready: until it is True the predictor waits for the weights.
Ready also needs KServe's own Ready of the LLMInferenceService, and the gateway's Available when there is one.
status.url is the guardrail gateway's Service URL (clients must come through it), shown once the gateway is
available; without a guardrail, prompt release or transformer settings there is no gateway and it is KServe's URL.
"""

from __future__ import annotations

from typing import Any

from llmops_operator.api.v1alpha1.inferenceservice import InferenceService
from llmops_operator.api.v1alpha1.serving_engine import ModelCacheStatus, resolved_runtime
from llmops_operator.builders.kserve import wants_transformer
from llmops_operator.builders.model_cache import FILLED, CachePlan, cache_filled
from llmops_operator.core import conditions as cond
from llmops_operator.core.contract import Observation
from llmops_operator.core.pricing import PriceCatalog
from llmops_operator.scoring.budget import BudgetState, service_budget_conditions, stopped_ready
from llmops_operator.status.inferenceservice import (
    GUARDRAIL_ATTACHED, KSERVE_READY, MODEL_READY, PROMPT_ATTACHED, Inputs, ServingFacts, common_fields,
    drift_condition, kserve_condition, metrics_condition,
)

MODEL_CACHED = "ModelCached"


def deployment_available(deployment: dict[str, Any] | None) -> cond.Observed:
    if deployment is None:
        return cond.unknown("Available", "GatewayMissing", "the guardrail gateway Deployment does not exist yet")
    found = cond.find((deployment.get("status") or {}).get("conditions") or [], "Available")
    if not found:
        return cond.unknown("Available", "GatewayStarting", "the guardrail gateway has not reported yet")
    return cond.Observed("Available", found.get("status", "Unknown"), found.get("reason") or "Available",
                         found.get("message") or "")


def llm_observation(obj: InferenceService, llm: dict[str, Any], gateway: dict[str, Any] | None, url: str,
                    inputs: Inputs, catalog: PriceCatalog, now: str, facts: ServingFacts | None,
                    budget: BudgetState) -> Observation:
    model_ready = kserve_condition(llm, "MainWorkloadReady", MODEL_READY)
    available = deployment_available(gateway)
    attached = [cond.Observed(type_, available.status, available.reason, available.message)
                for type_, wanted in ((GUARDRAIL_ATTACHED, obj.spec.guardrail_ref),
                                      (PROMPT_ATTACHED, obj.spec.prompt_release_ref)) if wanted is not None]
    gateway_ready = cond.Observed("GuardrailGateway", available.status, available.reason,
                                  available.message)
    kserve_ready = kserve_condition(llm, cond.READY, KSERVE_READY)
    ours = [model_ready, *attached]
    gated = wants_transformer(obj)
    if not gated:
        url = (llm.get("status") or {}).get("url") or ""
    required = [c.type for c in ours] + (["GuardrailGateway"] if gated else []) + [KSERVE_READY]
    ready = cond.aggregate_ready([*ours, gateway_ready, kserve_ready], required, "Serving",
                                 f"serving {inputs.model_uri} at {url or 'no URL yet'}")
    fields = common_fields(obj, catalog, now, inputs, facts, budget)
    fields |= {"modelUri": inputs.model_uri, "kserveService": llm["metadata"]["name"]}
    if url and (available.status == "True" or not gated):
        fields["url"] = url
    if inputs.attached:
        fields["attached"] = inputs.attached
    extra = [metrics_condition(facts)] if facts is not None else []
    if (fields.get("drift") or {}).get("score") is not None:
        extra.append(drift_condition(fields["drift"], obj.spec.drift.min_samples))
    extra += service_budget_conditions(budget, fields["cost"]["hourlyRate"], catalog.currency)
    if budget.stopped:
        return Observation(conditions=[*ours, *extra, stopped_ready(budget, catalog.currency)], phase="Stopped",
                           fields=fields)
    phase = "Ready" if ready.status == "True" else ("Degraded" if kserve_ready.status == "False" else "Deploying")
    return Observation(conditions=[*ours, *extra, ready], phase=phase, fields=fields)


def with_engine(observation: Observation, obj: InferenceService, cache: CachePlan | None,
                live: list[dict[str, Any]]) -> Observation:
    """The observation with status.runtime and, with spec.model.cache, status.cache and ModelCached (which holds
    Ready back while it is not True)."""
    if (runtime := resolved_runtime(obj.spec)) is not None:
        observation.fields["runtime"] = runtime
    if cache is None:
        return observation
    reason, message = cache_filled(cache, live)
    filled = reason == FILLED
    observation.fields["cache"] = ModelCacheStatus(kind=cache.kind, name=cache.name, filled=filled).wire()
    cached = cond.Observed(MODEL_CACHED, "True" if filled else "False", reason, message)
    conditions = [c for c in observation.conditions if c.type != cond.READY]
    ready = next((c for c in observation.conditions if c.type == cond.READY), None)
    if ready is not None and ready.status == "True" and not filled:
        ready = cond.false(cond.READY, reason, message)
    observation.conditions = [*conditions, cached, *([ready] if ready else [])]
    return observation
