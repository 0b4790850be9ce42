"""InferenceService controller: resolve the model, guardrail and prompt release, then one KServe InferenceService."""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any

from llmops_operator.api.v1alpha1.inferenceservice import InferenceService
from llmops_operator.builders.kserve import (
    KSERVE_API_VERSION, KSERVE_COMPONENT, PolicyMount, PromptMount, PromptVersionMount, kserve_name,
)
from llmops_operator.builders import labels
from llmops_operator.builders.engine import keda_metric
from llmops_operator.builders.labels import child_in_role
from llmops_operator.builders.llm_inference_service import (
    GATEWAY_COMPONENT, LLM_API_VERSION, LLM_COMPONENT, gateway_url,
)
from llmops_operator.builders.model_cache import LOCAL_MODEL_CACHE_API, LOCAL_MODEL_CACHE_KIND
from llmops_operator.builders.serving import LOCAL_MODEL_CACHE_CRD, Mounts, cache_plan, serving_children
from llmops_operator.builders.retrieval import attach_to_children
from llmops_operator.api.v1alpha1.vectorindex import VectorIndex
from llmops_operator.core.contract import parse
from llmops_operator.controllers import events
from llmops_operator.controllers import retrain_loop as retrain
from llmops_operator.controllers.base import Context, InvalidSpec, Observation, Reconciler, Refs
from llmops_operator.k8s.resources import resource_for
from llmops_operator.scoring.budget import BUDGET_EXCEEDED, budget_state
from llmops_operator.scoring.cost import UnknownGpuType, gpu_price
from llmops_operator.core import conditions as cond
from llmops_operator.api.v1alpha1.units import parse_duration
from llmops_operator.backends import prometheus as metrics_backend
from llmops_operator.k8s.client import ApiClient, NotFound
from llmops_operator.status.llm_serving import llm_observation, with_engine
from llmops_operator.status.adapters import adapter_states, adapters_block, adapters_condition, served
from llmops_operator.status.inferenceservice import (
    GUARDRAIL_ATTACHED, MODEL_READY, PROMPT_ATTACHED, RETRIEVAL_ATTACHED, Inputs, ServingFacts, cost_stamp_kept,
    serving_observation, waiting_observation,
)

KSERVE_ISVC = resource_for(KSERVE_API_VERSION, "InferenceService")
LLM_ISVC = resource_for(LLM_API_VERSION, "LLMInferenceService")
LOCAL_MODEL_CACHE = resource_for(LOCAL_MODEL_CACHE_API, LOCAL_MODEL_CACHE_KIND)
JOB = resource_for("batch/v1", "Job")
CONFIGMAP = resource_for("v1", "ConfigMap")


def reference_lengths(config_map: dict[str, Any] | None, key: str) -> dict[str, list[int]]:
    """Prompt (and, where records carry one, output) lengths of the drift reference's JSON Lines (pure)."""
    raw = ((config_map or {}).get("data") or {}).get(key) or ""
    prompts, outputs = [], []
    for line in raw.splitlines():
        try:
            record = json.loads(line) if line.strip() else None
        except ValueError:
            continue
        if isinstance(record, dict) and isinstance(record.get("text"), str):
            prompts.append(len(record["text"]))
            if isinstance(record.get("output"), str):
                outputs.append(len(record["output"]))
    return {"promptLength": prompts, "outputLength": outputs}


def _model(obj: InferenceService, refs: Refs, inputs: Inputs) -> None:
    spec = obj.spec.model
    if spec.uri:
        inputs.model_uri = spec.uri
        return
    if spec.training_job_ref:
        _training_job_model(spec.training_job_ref.name, refs, inputs)
        return
    name = spec.fine_tune_ref.name
    fine_tune = refs.get(("FineTune", name))
    if fine_tune is None:
        inputs.waiting = cond.false(MODEL_READY, "FineTuneNotFound",
                                    f"spec.model.fineTuneRef: FineTune {name!r} does not exist in this namespace")
    elif not cond.is_ready(fine_tune.get("status")) or not (fine_tune.get("status") or {}).get("outputUri"):
        phase = (fine_tune.get("status") or {}).get("phase") or "Pending"
        inputs.waiting = cond.false(MODEL_READY, "FineTuneNotSucceeded",
                                    f"waiting for FineTune {name!r} to succeed (phase {phase})")
    else:
        inputs.model_uri = fine_tune["status"]["outputUri"]
    if inputs.waiting:
        inputs.conditions.append(inputs.waiting)


def _training_job_model(name: str, refs: Refs, inputs: Inputs) -> None:
    job = refs.get(("TrainingJob", name))
    status = (job or {}).get("status") or {}
    if job is None:
        inputs.waiting = cond.false(MODEL_READY, "TrainingJobNotFound",
                                    f"spec.model.trainingJobRef: TrainingJob {name!r} does not exist in this namespace")
    elif not cond.is_ready(status) or not status.get("outputUri"):
        inputs.waiting = cond.false(MODEL_READY, "TrainingJobNotSucceeded", f"waiting for TrainingJob {name!r} to "
                                    f"succeed (phase {status.get('phase') or 'Pending'})")
    else:
        inputs.model_uri = status["outputUri"]
    if inputs.waiting:
        inputs.conditions.append(inputs.waiting)


def _guardrail(obj: InferenceService, refs: Refs, inputs: Inputs) -> PolicyMount | None:
    ref = obj.spec.guardrail_ref
    if ref is None:
        return None
    guardrail = refs.get(("Guardrail", ref.name))
    status = (guardrail or {}).get("status") or {}
    if guardrail is None:
        waiting = cond.false(GUARDRAIL_ATTACHED, "GuardrailNotFound",
                             f"spec.guardrailRef: Guardrail {ref.name!r} does not exist in this namespace")
    elif not cond.is_ready(status) or not status.get("policyConfigMap"):
        why = cond.ready_of(status).get("reason")
        waiting = cond.false(GUARDRAIL_ATTACHED, "GuardrailNotReady",
                             f"waiting for Guardrail {ref.name!r} to be Ready (its policy compiled and, with "
                             f"spec.evaluation, passed)" + (f": {why}" if why else ""))
    else:
        inputs.safety = status.get("safety")
        inputs.attached["policyConfigMap"] = status["policyConfigMap"]
        return PolicyMount(config_map=status["policyConfigMap"], hash=status.get("policyHash") or "",
                           name=ref.name)
    inputs.conditions.append(waiting)
    inputs.waiting = inputs.waiting or waiting
    return None


def _prompts(obj: InferenceService, refs: Refs, inputs: Inputs) -> PromptMount | None:
    ref = obj.spec.prompt_release_ref
    if ref is None:
        return None
    release = refs.get(("PromptRelease", ref.name))
    status = (release or {}).get("status") or {}
    if release is None:
        waiting = cond.false(PROMPT_ATTACHED, "PromptReleaseNotFound",
                             f"spec.promptReleaseRef: PromptRelease {ref.name!r} does not exist in this namespace")
    elif (not cond.is_ready(status) or not (status.get("stable") or {}).get("configMap")
          or not status.get("routingConfigMap")):
        waiting = cond.false(PROMPT_ATTACHED, "PromptReleaseNotReady",
                             f"waiting for PromptRelease {ref.name!r} to release its versions")
    else:
        versions = [PromptVersionMount(role, status[role]["version"], status[role]["configMap"])
                    for role in ("stable", "canary") if (status.get(role) or {}).get("configMap")]
        inputs.attached["promptStable"] = versions[0].version
        if len(versions) > 1:
            inputs.attached["promptCanary"] = versions[1].version
        return PromptMount(versions=tuple(versions), routing_config_map=status["routingConfigMap"])
    inputs.conditions.append(waiting)
    inputs.waiting = inputs.waiting or waiting
    return None


def _retrieval(obj: InferenceService, refs: Refs, inputs: Inputs) -> VectorIndex | None:
    """The VectorIndex spec.retrieval searches, once it serves vectors; else why the service waits."""
    if obj.spec.retrieval is None:
        return None
    name = obj.spec.retrieval.vector_index_ref.name
    body = refs.get(("VectorIndex", name))
    status = (body or {}).get("status") or {}
    if body is None:
        waiting = cond.false(RETRIEVAL_ATTACHED, "VectorIndexNotFound",
                             f"spec.retrieval.vectorIndexRef: VectorIndex {name!r} does not exist in this namespace")
    elif not cond.is_ready(status):
        waiting = cond.false(RETRIEVAL_ATTACHED, "VectorIndexNotReady",
                             f"waiting for VectorIndex {name!r} to finish its first ingest")
    else:
        inputs.retrieval_index = f"{name}/{status.get('collection') or ''}".rstrip("/")
        return parse(VectorIndex, body)
    inputs.conditions.append(waiting)
    inputs.waiting = inputs.waiting or waiting
    return None


def resolve(obj: InferenceService, refs: Refs) -> tuple[Inputs, PolicyMount | None, PromptMount | None]:
    """The model URI, policy and prompts to mount, or why the service has to wait (pure); the VectorIndex of
    spec.retrieval goes into inputs.vector_index."""
    inputs = Inputs(model_uri=None)
    _model(obj, refs, inputs)
    policy = _guardrail(obj, refs, inputs)
    prompts = _prompts(obj, refs, inputs)
    inputs.vector_index = _retrieval(obj, refs, inputs)
    return inputs, policy, prompts


class InferenceServiceReconciler(Reconciler):
    resource = InferenceService
    watches = (KSERVE_ISVC, LLM_ISVC, LOCAL_MODEL_CACHE, JOB)
    referenced_kinds = ("FineTune", "Guardrail", "PromptRelease", "TrainingJob", "VectorIndex")

    def check(self, obj: InferenceService, ctx: Context) -> None:
        base = kserve_name(obj)
        for index, adapter in enumerate(obj.spec.adapters or []):
            if adapter.name == base:
                raise InvalidSpec(f"spec.adapters[{index}].name {adapter.name!r}: the base model is served under that "
                                  "name; give the adapter another")
        if obj.spec.resources.gpus:
            try:
                gpu_price(ctx.catalog, obj.spec.resources.gpu_type)
            except UnknownGpuType as err:
                raise InvalidSpec(f"spec.resources.gpuType: {err}") from None
        if obj.spec.retrieval and not obj.spec.prompt_release_ref:
            raise InvalidSpec("spec.retrieval needs spec.promptReleaseRef: retrieved chunks fill the {{context}} "
                              "variable of the prompt release's template")
        if obj.spec.retrieval and obj.spec.deployment == "llmInferenceService":
            raise InvalidSpec("spec.retrieval is served by the guardrail transformer of a KServe InferenceService; "
                              "it is not available with spec.deployment llmInferenceService")
        if keda_metric(obj) and obj.spec.deployment != "llmInferenceService" and not ctx.settings.prometheus_url:
            raise InvalidSpec(f"spec.scaling.metric {obj.spec.scaling.metric} scales through KEDA on Prometheus: "
                              f"the operator setting LLMOPS_PROMETHEUS_URL must name the Prometheus KEDA reads")

    async def probe(self, obj: InferenceService, api: ApiClient) -> frozenset[str]:
        """Whether KServe's local model cache is installed, when the spec could use it."""
        cache = obj.spec.model.cache
        if cache is None or not cache.node_groups:
            return frozenset()
        try:
            await api.list(LOCAL_MODEL_CACHE, obj.namespace, labels.children_selector(obj))
        except NotFound as err:
            if err.missing_type:
                return frozenset()
            raise
        return frozenset({LOCAL_MODEL_CACHE_CRD})

    def references(self, obj: InferenceService) -> list[tuple[str, str]]:
        spec = obj.spec
        named = [("FineTune", spec.model.fine_tune_ref), ("TrainingJob", spec.model.training_job_ref),
                 ("Guardrail", spec.guardrail_ref), ("PromptRelease", spec.prompt_release_ref),
                 *(("FineTune", adapter.fine_tune_ref) for adapter in spec.adapters or []),
                 ("VectorIndex", spec.retrieval.vector_index_ref if spec.retrieval else None)]
        return list(dict.fromkeys((kind, ref.name) for kind, ref in named if ref is not None))

    def children(self, obj: InferenceService, ctx: Context, refs: Refs) -> list[dict[str, Any]] | None:
        inputs, policy, prompts = resolve(obj, refs)
        if inputs.waiting:
            return None  # not decidable until the reference is Ready: keep what runs
        stopped = budget_state(obj, ctx.now).stopped
        adapters = served(adapter_states(obj, refs))
        children = serving_children(obj, ctx, Mounts(inputs.model_uri, policy, prompts, adapters), stopped)
        if inputs.vector_index is not None:
            attach_to_children(children, obj, inputs.vector_index)
        return children

    async def observe(self, obj: InferenceService, live: list[dict[str, Any]], ctx: Context,
                      api: ApiClient) -> ServingFacts | None:
        """The guardrail runtime's metrics, once KServe reports a URL for a service that has a transformer (or the
        guardrail gateway of an LLMInferenceService is available)."""
        kserve, url, pods = runtime_endpoint(obj, live)
        if kserve is None or not url:
            return None
        if ctx.settings.prometheus_url:
            window = int(parse_duration(obj.spec.drift.window if obj.spec.drift else "1h"))
            got = await metrics_backend.query_prometheus(ctx.settings.prometheus_url, obj.namespace,
                                                         kserve["metadata"]["name"], window, pods=pods)
        else:
            got = await metrics_backend.scrape(url, time.time())
        references: dict[str, list[int]] = {}
        if obj.spec.drift:
            ref = obj.spec.drift.reference.config_map
            references = reference_lengths(await api.get_or_none(CONFIGMAP, obj.namespace, ref.name), ref.key)
        sample = await metrics_backend.parse_off_loop(got.text) if got.text else None
        return ServingFacts(sample=sample, seconds=got.seconds, reference_lengths=references, error=got.error)

    def status(self, obj: InferenceService, live: list[dict[str, Any]], facts: Any, ctx: Context,
               refs: Refs) -> Observation:
        previous = obj.status.cost.wire() if obj.status is not None and obj.status.cost is not None else None
        return cost_stamp_kept(self._status(obj, live, facts, ctx, refs), previous)

    def _status(self, obj: InferenceService, live: list[dict[str, Any]], facts: Any, ctx: Context,
                refs: Refs) -> Observation:
        inputs, _, _ = resolve(obj, refs)
        now, budget = cond.now_rfc3339(ctx.now), budget_state(obj, ctx.now)
        llm = obj.spec.deployment == "llmInferenceService"
        kserve = (child_in_role(live, "LLMInferenceService", LLM_COMPONENT) if llm
                  else child_in_role(live, "InferenceService", KSERVE_COMPONENT))
        cache = cache_plan(obj, inputs.model_uri, ctx) if inputs.model_uri else None
        if inputs.waiting or kserve is None:
            if not inputs.waiting:
                inputs.waiting = cond.unknown(cond.READY, "KServeServiceMissing",
                                              "the API server did not return the KServe InferenceService")
            waiting = with_adapters(obj, waiting_observation(obj, inputs, ctx.catalog, now, budget), refs, None)
            return with_engine(waiting, obj, cache, live)
        if llm:
            gateway = child_in_role(live, "Deployment", GATEWAY_COMPONENT)
            observation = llm_observation(obj, kserve, gateway, gateway_url(obj), inputs, ctx.catalog, now, facts,
                                          budget)
        else:
            observation = serving_observation(obj, kserve, inputs, ctx.catalog, now, facts, budget)
        return with_engine(with_adapters(obj, observation, refs, facts), obj, cache, live)

    async def act(self, obj: InferenceService, observation: Observation, ctx: Context, api: ApiClient) -> Observation:
        await announce_budget(obj, observation, ctx.now, api)
        return await retrain.close_loop(obj, observation, ctx, api)


def runtime_endpoint(obj: InferenceService, live: list[dict[str, Any]]
                     ) -> tuple[dict[str, Any] | None, str | None, str | None]:
    """(KServe object, URL of the guardrail runtime's /metrics base, its pods' name prefix) for a service whose
    runtime answers; (None, None, None) before it does (pure)."""
    if obj.spec.deployment == "llmInferenceService":
        llm = child_in_role(live, "LLMInferenceService", LLM_COMPONENT)
        gateway = child_in_role(live, "Deployment", GATEWAY_COMPONENT)
        available = cond.find(((gateway or {}).get("status") or {}).get("conditions") or [], "Available")
        if llm is None or not available or available.get("status") != "True":
            return None, None, None
        return llm, gateway_url(obj), gateway["metadata"]["name"]
    kserve = child_in_role(live, "InferenceService", KSERVE_COMPONENT)
    status = (kserve or {}).get("status") or {}
    url = (status.get("address") or {}).get("url") or status.get("url")
    if kserve is None or not url or not (kserve.get("spec") or {}).get("transformer"):
        return None, None, None
    return kserve, url, None


def with_adapters(obj: InferenceService, observation: Observation, refs: Refs, facts: Any) -> Observation:
    """AdaptersReady (before Ready, counting nothing toward it) and status.adapters, with spec.adapters (pure)."""
    if not obj.spec.adapters:
        return observation
    states = adapter_states(obj, refs)
    observation.conditions.insert(len(observation.conditions) - 1, adapters_condition(states))
    sample = getattr(facts, "sample", None)
    observation.fields["adapters"] = adapters_block(states, sample, observation.fields["cost"]["hourlyRate"])
    return observation


def budget_event(obj: InferenceService, observation: Observation, now: datetime) -> dict[str, Any] | None:
    """A Warning Event when this pass finds an Alert budget crossed and the last status did not (pure). A Stop
    needs none of its own: Ready turning False with reason BudgetExceeded is the transition Event."""
    if obj.spec.budget is None or obj.spec.budget.action != "Alert":
        return None
    crossed = next((c for c in observation.conditions if c.type == BUDGET_EXCEEDED and c.status == "True"), None)
    if crossed is None:
        return None
    before = next((c for c in (obj.status.conditions if obj.status else []) if c.type == BUDGET_EXCEEDED), None)
    if before is not None and before.status == "True":
        return None
    return events.event(events.involved(obj), BUDGET_EXCEEDED, crossed.message, "Warning", now)


async def announce_budget(obj: InferenceService, observation: Observation, now: datetime, api: ApiClient) -> None:
    """Post the budget Event, if any (best effort, as every Event: status already says it)."""
    event = budget_event(obj, observation, now)
    if event is not None:
        await events.post(api, event)
