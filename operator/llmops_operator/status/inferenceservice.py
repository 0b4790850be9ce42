"""Status of an InferenceService, reduced from the KServe InferenceService as KServe writes it (pure).

Conditions (each reported on every pass; the attached ones only when the spec asks for them):
- ModelReady: mirrors KServe's PredictorReady. False with reason FineTuneNotFound / FineTuneNotSucceeded
  while spec.model.fineTuneRef has no output yet (the KServe object is then not created). Counts toward Ready.
- GuardrailAttached: only with spec.guardrailRef. False (GuardrailNotFound, GuardrailNotReady) while the
  Guardrail has no compiled policy; then mirrors KServe's TransformerReady, since the transformer enforces
  the policy. Counts toward Ready.
- PromptAttached: only with spec.promptReleaseRef. False (PromptReleaseNotFound, PromptReleaseNotReady)
  while the PromptRelease is not Ready; then mirrors KServe's TransformerReady. Counts toward Ready.
- RetrievalAttached: only with spec.retrieval. False (VectorIndexNotFound, VectorIndexNotReady) while the
  VectorIndex has not served vectors yet; then mirrors KServe's TransformerReady, which retrieves. Counts toward
  Ready. status.retrieval carries the retrieval figures (scoring/retrieval_metrics.py).
- MetricsAvailable: only once serving; False when the runtime's metrics could not be read (the message says
  why). Informational: safety, latency, cost per 1k tokens and drift keep their last values meanwhile.
- DriftDetected: only once live drift has a score; True when it is above spec.drift.threshold. Informational.
  status.drift is the last evaluation: a window with no samples (the transformer restarted and its counters
  reset, or unreadable metrics) keeps the last score, feature and evaluatedAt and re-judges only `drifted`
  against the current threshold (scoring/serving_metrics.py kept_drift), so drifted == (score > threshold)
  always holds and evaluatedAt is when the score shown was computed.
- BudgetExceeded, BudgetFitsEstimate: only with spec.budget (see scoring/budget.py). Informational.
- Ready: True when every condition above is True and KServe's own Ready (ingress included) is True;
  otherwise the first one that is not, with its reason and message. False with reason BudgetExceeded while
  spec.budget.action Stop holds the service.

Phase: Pending (waiting for a reference, or KServe has not reported yet), Deploying (KServe Unknown),
Degraded (KServe False), Canary (Ready, traffic split over two predictor revisions), Ready, Stopped (the
budget's Stop action holds the service).

status.cost carries the hourly rate at the replica floor and the current budget period's spend (spent,
periodStart, accrued between passes: scoring/budget.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from llmops_operator.api.v1alpha1.inferenceservice import InferenceService, ServiceCostStatus, TrafficTarget
from llmops_operator.api.v1alpha1.units import gib, parse_quantity
from llmops_operator.builders.kserve import wants_transformer
from llmops_operator.core.contract import Observation
from llmops_operator.core.pricing import PriceCatalog
from llmops_operator.scoring.budget import BudgetState, period_estimate, service_budget_conditions, stopped_ready
from llmops_operator.scoring.cost import money, per_1k_tokens, pod_hourly
from llmops_operator.scoring.serving_metrics import (
    ServingSample, drift_block as live_drift, kept_drift, latency_block, safety_block, tokens_served,
)
from llmops_operator.scoring.retrieval_metrics import (
    kept_query_drift, query_drift, query_drift_block, retrieval_block,
)
from llmops_operator.core import conditions as cond

MODEL_READY = "ModelReady"
GUARDRAIL_ATTACHED = "GuardrailAttached"
PROMPT_ATTACHED = "PromptAttached"
RETRIEVAL_ATTACHED = "RetrievalAttached"
METRICS_AVAILABLE = "MetricsAvailable"
DRIFT_DETECTED = "DriftDetected"
KSERVE_READY = "KServeReady"
"""KServe's own Ready, used for the aggregate only (not reported as a condition of ours)."""


@dataclass(frozen=True)
class ServedTokens:
    """Tokens the service served over a window, from the metrics backend."""

    tokens: int
    seconds: float


@dataclass(frozen=True)
class ServingFacts:
    """What the runtime's metrics said (backends/prometheus.py), and the drift reference's lengths."""

    sample: ServingSample | None
    seconds: float | None
    reference_lengths: dict[str, list[int]] = field(default_factory=dict)
    error: str | None = None

    @property
    def served(self) -> ServedTokens | None:
        if self.sample is None or not self.seconds:
            return None
        return ServedTokens(tokens=tokens_served(self.sample), seconds=self.seconds)


@dataclass
class Inputs:
    """What the references resolved to: the conditions about them, and the first reason to wait, if any."""

    model_uri: str | None
    conditions: list[cond.Observed] = field(default_factory=list)
    waiting: cond.Observed | None = None
    safety: dict[str, Any] | None = None
    attached: dict[str, Any] = field(default_factory=dict)
    vector_index: Any = None
    """The parsed VectorIndex spec.retrieval searches, once it is Ready."""
    retrieval_index: str | None = None
    """Its name and alias (name/alias), for status.retrieval."""


def kserve_condition(kserve: dict[str, Any], type_: str, ours: str | None = None) -> cond.Observed:
    """One of KServe's conditions under our type name; Unknown when KServe has not reported it yet."""
    found = cond.find((kserve.get("status") or {}).get("conditions") or [], type_)
    ours = ours or type_
    if not found:
        return cond.unknown(ours, f"{type_}Unknown", f"KServe has not reported {type_} yet")
    status = found.get("status", "Unknown")
    reason = found.get("reason") or (type_ if status == "True" else f"{type_}False")
    return cond.Observed(ours, status, reason, found.get("message") or "")


def hourly_rate(obj: InferenceService, catalog: PriceCatalog) -> float:
    """Cost per hour at the replica floor: (predictor pod + transformer pod) x replicas.min."""
    res = obj.spec.resources
    rate = pod_hourly(catalog, parse_quantity(res.cpu), gib(res.memory), res.gpus, res.gpu_type)
    if wants_transformer(obj):
        settings = obj.spec.transformer
        cpu, memory = (settings.cpu, settings.memory) if settings else ("500m", "1Gi")
        rate += pod_hourly(catalog, parse_quantity(cpu), gib(memory))
    return rate * obj.spec.replicas.min


def cost_block(obj: InferenceService, catalog: PriceCatalog, now: str, served: ServedTokens | None,
               budget: BudgetState) -> dict:
    rate = hourly_rate(obj, catalog)
    per_1k = per_1k_tokens(rate, served.seconds, served.tokens) if served else None
    cost = ServiceCostStatus(currency=catalog.currency, hourly_rate=money(rate),
                             per_1k_tokens=money(per_1k) if per_1k is not None else None, updated_at=now,
                             spent=budget.spend.spent, period_start=cond.now_rfc3339(budget.spend.period_start))
    if budget.limit is not None:
        cost.budget = budget.limit
        cost.estimate = period_estimate(money(rate), budget)
    return cost.wire()


def drift_block(obj: InferenceService, facts: ServingFacts | None = None, now: str = "") -> dict[str, Any] | None:
    """Live drift of prompt/output lengths against the reference, evaluated `now`, when the window has samples;
    otherwise the last evaluation kept (re-judged against the current threshold), or the settings until one exists.
    A retrieval service with metric embedding reports query drift instead (scoring/retrieval_metrics.py)."""
    drift = obj.spec.drift
    if drift is None:
        return None
    previous = obj.status.drift.wire() if obj.status is not None and obj.status.drift is not None else None
    if drift.metric == "embedding" and obj.spec.retrieval is not None:
        if (queries := query_drift(facts.sample if facts else None)) is not None:
            return query_drift_block(*queries, drift.threshold, drift.window, now, drift.min_samples)
        if (kept := kept_query_drift(previous, drift.threshold, drift.window, drift.min_samples)) is not None:
            return kept
    if facts is not None and facts.sample is not None:
        live = live_drift(facts.sample, facts.reference_lengths, drift.metric, drift.threshold, drift.window, now,
                          drift.min_samples)
        if live is not None:
            return live
    return kept_drift(previous, drift.metric, drift.threshold, drift.window, drift.min_samples)


def traffic_of(kserve: dict[str, Any]) -> tuple[str | None, list[dict[str, Any]]]:
    predictor = (((kserve.get("status") or {}).get("components") or {}).get("predictor") or {})
    targets = [TrafficTarget(revision=t.get("revisionName", ""), percent=t.get("percent"),
                             latest=bool(t.get("latestRevision"))).wire()
               for t in predictor.get("traffic") or [] if t.get("revisionName")]
    return predictor.get("latestReadyRevision"), targets


def attached_conditions(obj: InferenceService, kserve: dict[str, Any], inputs: Inputs) -> list[cond.Observed]:
    out = []
    transformer = kserve_condition(kserve, "TransformerReady")
    for type_, wanted in ((GUARDRAIL_ATTACHED, obj.spec.guardrail_ref), (PROMPT_ATTACHED, obj.spec.prompt_release_ref),
                          (RETRIEVAL_ATTACHED, obj.spec.retrieval)):
        if wanted is not None:
            out.append(cond.Observed(type_, transformer.status, transformer.reason, transformer.message))
    return out


def _phase(ready: cond.Observed, kserve_ready: cond.Observed, traffic: list[dict[str, Any]]) -> str:
    if ready.status == "True":
        return "Canary" if sum(1 for t in traffic if t.get("percent")) > 1 else "Ready"
    if kserve_ready.status == "False":
        return "Degraded"
    return "Deploying" if kserve_ready.reason != f"{cond.READY}Unknown" else "Pending"


def common_fields(obj: InferenceService, catalog: PriceCatalog, now: str, inputs: Inputs,
                  facts: ServingFacts | None, budget: BudgetState) -> dict[str, Any]:
    """Cost, drift, safety and latency; live safety (the runtime's verdicts) wins over the policy's self-test."""
    fields: dict[str, Any] = {"cost": cost_block(obj, catalog, now, facts.served if facts else None, budget)}
    if (drift := drift_block(obj, facts, now)) is not None:
        fields["drift"] = drift
    live = safety_block(facts.sample) if facts and facts.sample else None
    if live is not None:
        fields["safety"] = {**live, "evaluatedAt": now}
    elif inputs.safety is not None:
        fields["safety"] = inputs.safety
    if facts and facts.sample and (latency := latency_block(facts.sample)) is not None:
        fields["latency"] = latency
    if obj.spec.retrieval is not None:
        fields["retrieval"] = retrieval_block(facts.sample if facts else None, inputs.retrieval_index)
    return fields


def waiting_observation(obj: InferenceService, inputs: Inputs, catalog: PriceCatalog, now: str,
                        budget: BudgetState) -> Observation:
    """A reference is missing or not ready: the KServe object is not built, and Ready says why."""
    waiting = inputs.waiting
    message = f"{waiting.message}; the KServe InferenceService is not created until it is"
    ready = cond.false(cond.READY, waiting.reason, message)
    extra = service_budget_conditions(budget, money(hourly_rate(obj, catalog)), catalog.currency)
    return Observation(conditions=[*inputs.conditions, *extra, ready], phase="Pending",
                       fields=common_fields(obj, catalog, now, inputs, None, budget))


def serving_observation(obj: InferenceService, kserve: dict[str, Any], inputs: Inputs, catalog: PriceCatalog,
                        now: str, facts: ServingFacts | None, budget: BudgetState) -> Observation:
    """Status from the live KServe InferenceService (stopped when the budget's Stop action holds it)."""
    model_ready = kserve_condition(kserve, "PredictorReady", MODEL_READY)
    attached = attached_conditions(obj, kserve, inputs)
    kserve_ready = kserve_condition(kserve, cond.READY, KSERVE_READY)
    ours = [model_ready, *attached]
    required = [c.type for c in ours] + [KSERVE_READY]
    status = kserve.get("status") or {}
    ready = cond.aggregate_ready([*ours, kserve_ready], required, "Serving",
                                 f"serving {inputs.model_uri} at {status.get('url') or 'no URL yet'}")
    latest, traffic = traffic_of(kserve)
    fields = common_fields(obj, catalog, now, inputs, facts, budget)
    fields |= {"modelUri": inputs.model_uri, "kserveService": kserve["metadata"]["name"]}
    fields |= {k: v for k, v in {"url": status.get("url"), "latestReadyRevision": latest,
                                 "traffic": traffic or None, "attached": inputs.attached or None}.items() if v}
    extra = [metrics_condition(facts)] if facts is not None else []
    if (fields.get("drift") or {}).get("score") is not None:
        extra.append(drift_condition(fields["drift"], obj.spec.drift.min_samples))
    extra += service_budget_conditions(budget, fields["cost"]["hourlyRate"], catalog.currency)
    if budget.stopped:
        stopped = stopped_ready(budget, catalog.currency)
        return Observation(conditions=[*ours, *extra, stopped], phase="Stopped", fields=fields)
    return Observation(conditions=[*ours, *extra, ready], phase=_phase(ready, kserve_ready, traffic), fields=fields)


def drift_condition(drift: dict[str, Any], min_samples: int = 1) -> cond.Observed:
    summary = f"{drift['metric']} {drift['score']:.3f} on {drift.get('feature')} (threshold {drift['threshold']})"
    if drift.get("drifted"):
        return cond.true(DRIFT_DETECTED, "DriftAboveThreshold", summary)
    samples = drift.get("samples")
    if samples is not None and samples < min_samples:
        return cond.false(DRIFT_DETECTED, "TooFewSamples",
                          f"{summary}, from {samples} of the {min_samples} samples spec.drift.minSamples asks for")
    return cond.false(DRIFT_DETECTED, "WithinThreshold", summary)


def metrics_condition(facts: ServingFacts) -> cond.Observed:
    if facts.error:
        return cond.false(METRICS_AVAILABLE, "MetricsUnavailable", facts.error)
    return cond.true(METRICS_AVAILABLE, "Scraped", f"{int(facts.sample.total) if facts.sample else 0} requests seen")


def cost_stamp_kept(observation: Observation, previous: dict[str, Any] | None) -> Observation:
    """cost.updatedAt moves only when the cost figures move, so a pass that observes nothing new writes nothing."""
    cost = observation.fields.get("cost")

    def figures(block: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in block.items() if k != "updatedAt"}
    if previous and cost and previous.get("updatedAt") and figures(previous) == figures(cost):
        observation.fields["cost"] = {**cost, "updatedAt": previous["updatedAt"]}
    return observation

