"""PromptRelease controller: version and routing ConfigMaps, the canary decision, the candidate's evaluation.

One pass, in the loop's order for a kind whose children follow what is measured (`observes_first`):
- observe(): facts only: the target InferenceService, its live per-version metrics, and how the candidate's
  evaluation stands in the worker (controllers/prompt_evaluator.py);
- decide(): the pass's one decision (status/promptrelease.pass_decision): the rollout, and whether an
  evaluation attempt starts;
- children(): the version ConfigMaps and the routing ConfigMap for that decision's split;
- status(): the same decision reduced to status;
- act(): the rollout's Event (controllers/events) and the start of an evaluation attempt, which runs in the
  worker, never inside the pass.
"""

from __future__ import annotations

import time
from typing import Any

from llmops_operator.api.v1alpha1 import Guardrail
from llmops_operator.api.v1alpha1.promptrelease import EvaluationExample, EvaluationResult, PromptDrift, PromptRelease
from llmops_operator.backends import prometheus as metrics_backend
from llmops_operator.backends.judge import judge_faithfulness
from llmops_operator.backends.prompt_evaluation import (
    Endpoint, EvaluationUnavailable, ScoringFailed, run_examples, score_outputs,
)
from llmops_operator.builders.guardrail_policy import compile_policy
from llmops_operator.builders.prompts import build_prompt_configmaps, evaluation_token
from llmops_operator.controllers import events
from llmops_operator.controllers.base import Context, InvalidSpec, Observation, Reconciler, Refs, parse
from llmops_operator.controllers.prompt_evaluator import (
    AttemptFailed, EvaluationWorker, Finished, Key, Progress,
)
from llmops_operator.core import conditions as cond
from llmops_operator.k8s.client import ApiClient
from llmops_operator.k8s.resources import resource_for
from llmops_operator.k8s.capped import BodyTooLarge
from llmops_operator.scoring.prompt_evaluation import (
    MAX_DATASET_BYTES, DatasetError, DatasetTooLarge, Output, parse_dataset,
)
from llmops_operator.scoring.serving_metrics import ServingSample, safety_block
from llmops_operator.status.promptrelease import (
    TARGET_ATTACHED, PassDecision, PromptFacts, candidate_hash, cached_evaluation, pass_decision,
    projected_release_status, release_observation,
)
from llmops_operator.status.judge import judge_readiness
from llmops_operator.status.rollout import Action, LiveFacts

CONFIGMAP = resource_for("v1", "ConfigMap")
LLMOPS_ISVC = resource_for("llmops.dev/v1alpha1", "InferenceService")
GUARDRAIL = resource_for(Guardrail.model_fields["api_version"].default, "Guardrail")
MAX_CONFIGMAP_BYTES = 2 * MAX_DATASET_BYTES + 64 * 1024
"""The most of a dataset ConfigMap read: its key at the bound, escaped in JSON, beside its metadata."""


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


def evaluation_key(release: PromptRelease) -> Key:
    return (release.metadata.uid or f"{release.namespace}/{release.name}", candidate_hash(release) or "")


def evaluation_facts(progress: Progress, max_running: int) -> dict[str, Any]:
    """PromptFacts' evaluation fields from how the worker's attempt stands."""
    facts: dict[str, Any] = {"evaluation_may_start": progress.may_start}
    if progress.finished is not None:
        facts.update(evaluation=progress.finished.evaluation, drift=progress.finished.drift)
    elif progress.queued:
        facts["evaluation_waits_for"] = f"queued: at most {max_running} evaluations run at once"
    elif progress.running:
        facts["evaluation_waits_for"] = "the evaluation is running"
    elif progress.failure is not None:
        facts["evaluation_waits_for"] = progress.failure.message
        facts["evaluation_failure"] = (progress.failure.reason, progress.failure.message)
    return facts


class PromptReleaseReconciler(Reconciler):
    resource = PromptRelease
    watches = (CONFIGMAP,)
    observes_first = True

    def __init__(self, evaluations: EvaluationWorker | None = None):
        self.evaluations = evaluations or EvaluationWorker()

    async def observe(self, obj: PromptRelease, live: list[dict[str, Any]], ctx: Context,
                      api: ApiClient) -> PromptFacts:
        if obj.spec.target is None:
            return PromptFacts()
        target = await api.get_or_none(LLMOPS_ISVC, obj.namespace, obj.spec.target.name)
        attached = target_attached(obj, target)
        status = (target or {}).get("status") or {}
        evaluation = evaluation_facts(self._progress(obj), self.evaluations.max_running)
        if attached.status != "True" or not status.get("url"):
            return PromptFacts(target=attached, **evaluation)
        canary = obj.spec.rollout.canary
        scraped = await metrics_backend.scrape(status["url"], time.time())
        sample = await metrics_backend.parse_off_loop(scraped.text) if scraped.text else None
        return PromptFacts(live=live_facts(sample, canary.version if canary else None, status),
                           target=attached, target_url=status["url"], **evaluation)

    def _progress(self, obj: PromptRelease) -> Progress:
        if obj.spec.evaluation is None or obj.spec.rollout.canary is None or cached_evaluation(obj) is not None:
            return Progress(may_start=False)
        return self.evaluations.progress(evaluation_key(obj))

    def decide(self, obj: PromptRelease, facts: Any, ctx: Context) -> PassDecision:
        return pass_decision(obj, facts, ctx.now)

    def children(self, obj: PromptRelease, ctx: Context, refs: Refs) -> list[dict[str, Any]]:
        """The ConfigMaps of the decided split; the routing holds the evaluation token while the candidate is
        evaluated, and only then."""
        decided = ctx.decision or pass_decision(obj, None, ctx.now)
        evaluating = decided.rollout.action is Action.EVALUATE
        token = evaluation_token(obj, ctx.settings.evaluation_key) if evaluating else None
        return build_prompt_configmaps(obj, decided.rollout.routes, token)

    def status(self, obj: PromptRelease, live: list[dict[str, Any]], facts: Any, ctx: Context,
               refs: Refs) -> Observation:
        return release_observation(obj, live, facts, ctx.now, ctx.decision)

    def projected_status(self, obj: PromptRelease, ctx: Context) -> dict[str, Any] | None:
        return projected_release_status(obj)

    async def act(self, obj: PromptRelease, observation: Observation, ctx: Context, api: ApiClient) -> Observation:
        """Post the rollout's Event when this pass's status records the transition (a pass whose ConfigMaps are
        not all there yet records nothing, and decides it again); start the evaluation attempt it decided."""
        decided: PassDecision = ctx.decision
        event = decided.rollout.event
        if event is not None and "rollout" in observation.fields and obj.metadata.uid:
            await events.post(api, rollout_event(obj, *event, cond.now_rfc3339(ctx.now)))
        if decided.evaluate_at is not None:
            self.evaluations.start(evaluation_key(obj), lambda: self._evaluate(obj, decided.evaluate_at, ctx, api),
                                   lambda: self._requeue(obj))
        return observation

    def _requeue(self, obj: PromptRelease) -> None:
        if self.requeue is not None:
            self.requeue(obj.namespace, obj.name)

    async def _examples(self, obj: PromptRelease, api: ApiClient) -> list[EvaluationExample]:
        evaluation = obj.spec.evaluation
        if evaluation.examples is not None:
            return list(evaluation.examples)
        ref = evaluation.dataset
        where = f"spec.evaluation.dataset: ConfigMap {ref.name!r} key {ref.key!r}"
        try:
            config_map = await api.get_or_none(CONFIGMAP, obj.namespace, ref.name, max_bytes=MAX_CONFIGMAP_BYTES)
        except BodyTooLarge:
            raise DatasetTooLarge(f"{where}: the ConfigMap is larger than {MAX_CONFIGMAP_BYTES} bytes, more than a "
                                  f"dataset of {MAX_DATASET_BYTES} bytes needs; an evaluation reads no more") from None
        text = ((config_map or {}).get("data") or {}).get(ref.key)
        if text is None:
            raise DatasetError(f"spec.evaluation.dataset: ConfigMap {ref.name!r} has no key {ref.key!r}")
        return parse_dataset(text, where)

    async def _policy(self, obj: PromptRelease, api: ApiClient) -> dict[str, Any] | None:
        """The compiled policy of spec.evaluation.guardrailRef, run over the outputs by the scoring process."""
        ref = obj.spec.evaluation.guardrail_ref
        if ref is None:
            return None
        body = await api.get_or_none(GUARDRAIL, obj.namespace, ref.name)
        if body is None:
            raise AttemptFailed("GuardrailInvalid",
                                   f"spec.evaluation.guardrailRef: Guardrail {ref.name!r} does not exist")
        try:
            return compile_policy(parse(Guardrail, body).spec)
        except InvalidSpec as err:
            raise AttemptFailed("GuardrailInvalid", f"spec.evaluation.guardrailRef: Guardrail {ref.name!r} "
                                                       f"is invalid: {err}") from None

    async def _evaluate(self, obj: PromptRelease, url: str, ctx: Context, api: ApiClient) -> Finished:
        """The candidate's scored outputs and their length drift against the stable version's (in the worker);
        AttemptFailed says why it could not finish."""
        canary, spec = obj.spec.rollout.canary, obj.spec
        endpoint = Endpoint(url=url, model=spec.target.name, token=evaluation_token(obj, ctx.settings.evaluation_key))
        try:
            examples = await self._examples(obj, api)
            policy = await self._policy(obj, api)
            judge_url = await self._judge_url(obj, api)
            outputs = await run_examples(endpoint, canary.version, examples)
            baseline = await run_examples(endpoint, spec.rollout.stable, examples)
            scored = await score_outputs({
                "version": canary.version, "stable": spec.rollout.stable, "hash": candidate_hash(obj),
                "metric": spec.evaluation.metric, "evaluatedAt": cond.now_rfc3339(),
                "examples": [e.wire() for e in examples], "policy": policy,
                "outputs": [_wire(o) for o in outputs], "baseline": [_wire(o) for o in baseline]})
        except (DatasetError, EvaluationUnavailable, ScoringFailed) as err:
            raise AttemptFailed(err.reason, str(err)) from None
        result = EvaluationResult.model_validate(scored["evaluation"], by_alias=True, by_name=False)
        if judge_url is not None:
            judged = await judge_faithfulness(judge_url, spec.evaluation.judge,
                                              [(e.variables, o.context, o.text) for e, o in zip(examples, outputs)])
            result = result.model_copy(update={"judge_faithfulness": judged.faithfulness,
                                               "judge_errors": judged.errors})
        return Finished(result, PromptDrift.model_validate(scored["drift"], by_alias=True, by_name=False))

    async def _judge_url(self, obj: PromptRelease, api: ApiClient) -> str | None:
        """The URL of spec.evaluation.judge's InferenceService (None without a judge); AttemptFailed while it is
        missing or not Ready."""
        judge = obj.spec.evaluation.judge
        if judge is None:
            return None
        name = judge.service_ref.name
        url, ready = judge_readiness(name, await api.get_or_none(LLMOPS_ISVC, obj.namespace, name),
                                     "spec.evaluation.judge.serviceRef")
        if url is None:
            raise AttemptFailed(ready.reason, ready.message)
        return url


def _wire(output: Output) -> dict[str, Any]:
    return output.wire()
