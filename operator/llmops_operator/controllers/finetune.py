"""FineTune controller: waits for its base model, then one KubeRay RayJob per run, like TrainingJob."""

from __future__ import annotations

from typing import Any

from llmops_operator.api.v1alpha1.finetune import FineTune
from llmops_operator.api.v1alpha1.guardrail import Guardrail
from llmops_operator.builders.guardrail_policy import compile_policy
from llmops_operator.builders.runconfig import finetune_run_config, output_uri
from llmops_operator.controllers.base import Context, InvalidSpec, Observation, Reconciler, Refs, parse
from llmops_operator.controllers.jobs import CONFIGMAP, RAYJOB, check_gpu_type, job_children, run_observation
from llmops_operator.core import conditions as cond
from llmops_operator.status.finetune import finetune_outcome
from llmops_operator.status.jobs import waiting_observation
from llmops_operator.status.judge import judge_readiness

BASE_MODEL_READY = "BaseModelReady"
GUARDRAIL_READY = "GuardrailReady"


def base_model(ft: FineTune, refs: Refs) -> tuple[str | None, cond.Observed]:
    """The base model's URI, or None and why the FineTune has to wait for it."""
    spec = ft.spec.base_model
    if spec.uri:
        return spec.uri, cond.true(BASE_MODEL_READY, "BaseModelGiven", spec.uri)
    name = spec.training_job_ref.name
    job = refs.get(("TrainingJob", name))
    if job is None:
        return None, cond.false(BASE_MODEL_READY, "TrainingJobNotFound",
                                f"spec.baseModel.trainingJobRef: TrainingJob {name!r} does not exist in this namespace")
    status = job.get("status") or {}
    ready = cond.ready_of(status)
    if status.get("phase") in ("Failed", "Invalid"):
        return None, cond.false(BASE_MODEL_READY, "TrainingJobFailed",
                                f"TrainingJob {name!r} ended {status['phase']}: fix and re-apply it")
    if ready.get("status") != "True" or not status.get("outputUri"):
        return None, cond.false(BASE_MODEL_READY, "TrainingJobNotSucceeded",
                                f"waiting for TrainingJob {name!r} to succeed (phase {status.get('phase', 'Pending')})")
    return status["outputUri"], cond.true(BASE_MODEL_READY, "TrainingJobSucceeded", status["outputUri"])


def guardrail_policy(ft: FineTune, refs: Refs) -> tuple[dict[str, Any] | None, cond.Observed | None]:
    """The evaluation Guardrail's compiled policy and GuardrailReady; (None, None) without a guardrailRef.

    The policy is None, and GuardrailReady False saying why, while the FineTune waits for the Guardrail."""
    ref = ft.spec.evaluation.guardrail_ref if ft.spec.evaluation else None
    if ref is None:
        return None, None
    guardrail = refs.get(("Guardrail", ref.name))
    config_map = ((guardrail or {}).get("status") or {}).get("policyConfigMap")
    if guardrail is None:
        return None, cond.false(GUARDRAIL_READY, "GuardrailNotFound", f"spec.evaluation.guardrailRef: Guardrail "
                                f"{ref.name!r} does not exist in this namespace")
    if not config_map:
        return None, cond.false(GUARDRAIL_READY, "GuardrailNotReady",
                                f"waiting for Guardrail {ref.name!r} to compile its policy")
    try:
        policy = compile_policy(parse(Guardrail, guardrail).spec)
    except InvalidSpec as err:
        return None, cond.false(GUARDRAIL_READY, "GuardrailInvalid", f"Guardrail {ref.name!r}: {err}")
    return policy, cond.true(GUARDRAIL_READY, "PolicyCompiled",
                             f"the evaluation runs Guardrail {ref.name!r} (policy ConfigMap {config_map!r})")


def judge_endpoint(ft: FineTune, refs: Refs) -> tuple[str | None, cond.Observed | None]:
    """The judge InferenceService's URL and JudgeReady; (None, None) without evaluation.judge.

    The URL is None, and JudgeReady False saying why, while the FineTune waits for the service."""
    judge = ft.spec.evaluation.judge if ft.spec.evaluation else None
    if judge is None:
        return None, None
    name = judge.service_ref.name
    return judge_readiness(name, refs.get(("InferenceService", name)), "spec.evaluation.judge.serviceRef")


def _waiting(*observed: cond.Observed | None) -> cond.Observed | None:
    """The first reference condition that is not True, if any."""
    return next((c for c in observed if c is not None and c.status != "True"), None)


class FineTuneReconciler(Reconciler):
    resource = FineTune
    watches = (RAYJOB, CONFIGMAP)
    referenced_kinds = ("TrainingJob", "Guardrail", "InferenceService")

    def check(self, obj: FineTune, ctx: Context) -> None:
        check_gpu_type(obj, ctx)

    def references(self, obj: FineTune) -> list[tuple[str, str]]:
        refs = []
        if obj.spec.base_model.training_job_ref:
            refs.append(("TrainingJob", obj.spec.base_model.training_job_ref.name))
        if obj.spec.evaluation and obj.spec.evaluation.guardrail_ref:
            refs.append(("Guardrail", obj.spec.evaluation.guardrail_ref.name))
        if obj.spec.output.promote:
            refs.append(("InferenceService", obj.spec.output.promote.inference_service_ref.name))
        if obj.spec.evaluation and obj.spec.evaluation.judge:
            refs.append(("InferenceService", obj.spec.evaluation.judge.service_ref.name))
        return refs

    def children(self, obj: FineTune, ctx: Context, refs: Refs) -> list[dict[str, Any]] | None:
        uri, _ = base_model(obj, refs)
        policy, guardrail_ready = guardrail_policy(obj, refs)
        judge_url, judge_ready = judge_endpoint(obj, refs)
        if uri is None or _waiting(guardrail_ready, judge_ready):
            return None  # not decidable until the reference is Ready: keep what runs
        return job_children(obj, finetune_run_config(obj, uri, policy, judge_url), ctx, inputs={"baseModelUri": uri})

    def status(self, obj: FineTune, live: list[dict[str, Any]], facts: Any, ctx: Context,
               refs: Refs) -> Observation:
        uri, base_ready = base_model(obj, refs)
        _, guardrail_ready = guardrail_policy(obj, refs)
        _, judge_ready = judge_endpoint(obj, refs)
        if uri is None:
            return waiting_observation(base_ready, obj.spec, ctx.catalog, ctx.now)
        waiting_for = _waiting(guardrail_ready, judge_ready)
        if waiting_for:
            waiting = waiting_observation(waiting_for, obj.spec, ctx.catalog, ctx.now)
            waiting.conditions[:0] = [c for c in (base_ready, guardrail_ready, judge_ready)
                                      if c is not None and c is not waiting_for]
            return waiting
        observation, progress = run_observation(obj, live, ctx)
        observation.conditions[:0] = [c for c in (base_ready, guardrail_ready, judge_ready) if c is not None]
        if observation.phase == "Succeeded":
            observation.fields["outputUri"] = output_uri(obj)
        return finetune_outcome(obj, observation, progress, refs)

    def projected_status(self, obj: FineTune, ctx: Context) -> dict[str, Any] | None:
        ready = {"type": "Ready", "status": "True", "reason": "Succeeded"}
        return {"phase": "Succeeded", "conditions": [ready], "outputUri": output_uri(obj)}
