"""PromptRelease controller: version and routing ConfigMaps, the candidate's evaluation, the canary decision.

children(): the ConfigMaps for the split the last status decided (status/promptrelease.planned_routes).
observe(): the target InferenceService, the candidate's offline evaluation (once per content hash) and the
live per-version metrics; then the pure decision (status/rollout.py) of this pass. When the decision moves
traffic (a step, a promotion, a rollback) the routing ConfigMap is applied at once rather than on the next
pass, and a Kubernetes Event says why. status(): the same decision, reduced to status.
"""

from __future__ import annotations

import time
from typing import Any

from llmops_operator.api.v1alpha1 import Guardrail
from llmops_operator.api.v1alpha1.promptrelease import (
    EvaluationExample, EvaluationResult, PromptDrift, PromptRelease,
)
from llmops_operator.backends import prometheus as metrics_backend
from llmops_operator.backends.prompt_evaluation import Endpoint, EvaluationUnavailable, run_examples
from llmops_operator.builders.guardrail_policy import compile_policy
from llmops_operator.builders.prompts import build_prompt_configmaps, build_routing_configmap
from llmops_operator.controllers import events
from llmops_operator.controllers.base import Context, InvalidSpec, Observation, Reconciler, Refs, parse
from llmops_operator.controllers.children import apply_child
from llmops_operator.guardrails.engine import Guardrail as GuardrailEngine
from llmops_operator.k8s.client import ApiClient
from llmops_operator.k8s.resources import resource_for
from llmops_operator.scoring.prompt_evaluation import (
    DatasetError, Output, length_drift, parse_dataset, summarise,
)
from llmops_operator.scoring.serving_metrics import ServingSample, safety_block
from llmops_operator.core import conditions as cond
from llmops_operator.core.contract import owner_body
from llmops_operator.status.promptrelease import (
    TARGET_ATTACHED, PromptFacts, cached_evaluation, candidate_hash, decision_of, planned_routes,
    projected_release_status, release_observation,
)
from llmops_operator.status.rollout import EVALUATING, LiveFacts

CONFIGMAP = resource_for("v1", "ConfigMap")
LLMOPS_ISVC = resource_for("llmops.dev/v1alpha1", "InferenceService")


def target_attached(release: PromptRelease, target: dict[str, Any] | None) -> cond.Observed:
    name = release.spec.target.name
    if target is None:
        return cond.false(TARGET_ATTACHED, "TargetNotFound",
                          f"spec.target: InferenceService {name!r} does not exist in this namespace")
    ref = ((target.get("spec") or {}).get("promptReleaseRef") or {}).get("name")
    if ref != release.name:
        return cond.false(TARGET_ATTACHED, "TargetMismatch",
                          f"spec.target: InferenceService {name!r} has spec.promptReleaseRef "
                          f"{ref!r}, not {release.name!r}; set it to this release")
    return cond.true(TARGET_ATTACHED, "Attached", f"served by InferenceService {name!r}")


def live_facts(sample: ServingSample | None, candidate: str | None, target_status: dict[str, Any]) -> LiveFacts:
    """Per-version facts from the runtime's metrics; latency and cost are service-wide, from the target's status."""
    requests = safety = None
    if sample is not None and candidate is not None:
        requests = int(sum(v for (version, _), v in sample.requests.items() if version == candidate))
        safety = (safety_block(sample, version=candidate) or {}).get("score")
    return LiveFacts(candidate_requests=requests, candidate_safety=safety,
                     latency_p99_ms=(target_status.get("latency") or {}).get("p99Ms"),
                     cost_per1k_tokens=(target_status.get("cost") or {}).get("per1kTokens"))


def rollout_event(release: PromptRelease, reason: str, message: str, now: str) -> dict[str, Any]:
    """A v1 Event on the release: Promoted is Normal, every other rollout event a Warning (pure)."""
    return events.event(events.involved(release), reason, message,
                        "Normal" if reason == "Promoted" else "Warning", now)


class PromptReleaseReconciler(Reconciler):
    resource = PromptRelease
    watches = (CONFIGMAP,)

    def children(self, obj: PromptRelease, ctx: Context, refs: Refs) -> list[dict[str, Any]]:
        return build_prompt_configmaps(obj, planned_routes(obj))

    def status(self, obj: PromptRelease, live: list[dict[str, Any]], facts: Any, ctx: Context,
               refs: Refs) -> Observation:
        return release_observation(obj, live, facts, ctx.now)

    def projected_status(self, obj: PromptRelease, ctx: Context) -> dict[str, Any] | None:
        return projected_release_status(obj)

    async def observe(self, obj: PromptRelease, live: list[dict[str, Any]], ctx: Context,
                      api: ApiClient) -> PromptFacts:
        facts = await self._facts(obj, ctx, api)
        decision = decision_of(obj, facts, ctx.now)
        if decision.routes != planned_routes(obj) and obj.metadata.uid:
            await apply_child(api, build_routing_configmap(obj, decision.routes), owner_body(obj))
        if decision.event and obj.metadata.uid:
            await events.post(api, rollout_event(obj, *decision.event, cond.now_rfc3339(ctx.now)))
        return facts

    async def _facts(self, obj: PromptRelease, ctx: Context, api: ApiClient) -> PromptFacts:
        if obj.spec.target is None:
            return PromptFacts()
        target = await api.get_or_none(LLMOPS_ISVC, obj.namespace, obj.spec.target.name)
        attached = target_attached(obj, target)
        status = (target or {}).get("status") or {}
        if attached.status != "True" or not status.get("url"):
            return PromptFacts(target=attached)
        canary = obj.spec.rollout.canary
        candidate = canary.version if canary else None
        scraped = await metrics_backend.scrape(status["url"], time.time())
        sample = await metrics_backend.parse_off_loop(scraped.text) if scraped.text else None
        evaluation, drift, waits_for = None, None, None
        if self._must_evaluate(obj):
            try:
                evaluation, drift = await self._evaluate(obj, status["url"], ctx, api)
            except (DatasetError, EvaluationUnavailable) as err:
                waits_for = str(err)
        return PromptFacts(evaluation=evaluation, drift=drift, evaluation_waits_for=waits_for,
                           live=live_facts(sample, candidate, status), target=attached)

    def _must_evaluate(self, obj: PromptRelease) -> bool:
        """Once per candidate content, while the rollout waits for it (the candidate is routed at weight 0)."""
        if obj.spec.evaluation is None or obj.spec.rollout.canary is None or cached_evaluation(obj) is not None:
            return False
        previous = obj.status.rollout if obj.status else None
        return previous is not None and previous.state == EVALUATING and \
            previous.candidate_hash == candidate_hash(obj)

    async def _examples(self, obj: PromptRelease, api: ApiClient) -> list[EvaluationExample]:
        evaluation = obj.spec.evaluation
        if evaluation.examples is not None:
            return list(evaluation.examples)
        ref = evaluation.dataset
        config_map = await api.get_or_none(CONFIGMAP, obj.namespace, ref.name)
        text = ((config_map or {}).get("data") or {}).get(ref.key)
        if text is None:
            raise DatasetError(f"spec.evaluation.dataset: ConfigMap {ref.name!r} has no key {ref.key!r}")
        return parse_dataset(text, f"ConfigMap {ref.name!r} key {ref.key!r}")

    async def _policy_check(self, obj: PromptRelease, api: ApiClient) -> GuardrailEngine | None:
        ref = obj.spec.evaluation.guardrail_ref
        if ref is None:
            return None
        body = await api.get_or_none(resource_for(Guardrail.model_fields["api_version"].default, "Guardrail"),
                                     obj.namespace, ref.name)
        if body is None:
            raise DatasetError(f"spec.evaluation.guardrailRef: Guardrail {ref.name!r} does not exist")
        try:
            guardrail = parse(Guardrail, body)
        except InvalidSpec as err:
            raise DatasetError(f"spec.evaluation.guardrailRef: Guardrail {ref.name!r} is invalid: {err}") from None
        return GuardrailEngine.from_document(compile_policy(guardrail.spec))

    async def _evaluate(self, obj: PromptRelease, url: str, ctx: Context,
                        api: ApiClient) -> tuple[EvaluationResult, PromptDrift]:
        """The candidate's scored outputs and their length drift against the stable version's; raises
        DatasetError or EvaluationUnavailable when it cannot run (the rollout waits and tries again)."""
        canary, spec = obj.spec.rollout.canary, obj.spec
        endpoint = Endpoint(url=url, model=spec.target.name)
        examples = await self._examples(obj, api)
        policy = await self._policy_check(obj, api)
        outputs = await run_examples(endpoint, canary.version, examples)
        baseline = await run_examples(endpoint, spec.rollout.stable, examples)
        if policy is not None:
            outputs = [checked(policy, o) for o in outputs]
        result = summarise(canary.version, candidate_hash(obj), examples, outputs, spec.evaluation.metric,
                           cond.now_rfc3339(ctx.now))
        return result, length_drift(canary.version, spec.rollout.stable, outputs, baseline)


def checked(policy: GuardrailEngine, output: Output) -> Output:
    """The output with the stricter of the service's outcome and the release's own Guardrail's."""
    if output.outcome == "blocked":
        return output
    verdict = policy.check(output.text, "output")
    outcome = verdict.outcome if verdict.outcome in ("blocked", "redacted") else output.outcome
    return Output(text=output.text, outcome=outcome)

