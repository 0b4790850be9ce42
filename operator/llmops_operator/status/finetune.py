"""What a FineTune adds to a job's status once its Ray job finished: evaluation, gate and promotion (pure).

Conditions set while waiting for the FineTune's inputs (controllers/finetune.py), before the job's:
- BaseModelReady: True once spec.baseModel has a URI (given, or the TrainingJob's output); False
  (TrainingJobNotFound, TrainingJobNotSucceeded, TrainingJobFailed) while it has none: no RayJob is built.
- GuardrailReady: only with spec.evaluation.guardrailRef. True (PolicyCompiled) once the Guardrail's policy is
  compiled; False (GuardrailNotFound, GuardrailNotReady, GuardrailInvalid) while it is not: no RayJob is built.
- JudgeReady: only with spec.evaluation.judge. True (Serving) once the judge InferenceService is Ready with a URL;
  False (InferenceServiceNotFound, InferenceServiceNotReady) while it is not: no RayJob is built.
Each counts toward Ready while it is False.

Conditions added to the job's (see status/jobs.py):
- Evaluated: True when the runtime reported its evaluation (only with spec.evaluation); its message lists the
  scores and each lm-eval task's first metric or error.
- GatesPassed: True when every gate held; False (reason GateFailed) names the gate that did not. The gates include
  each evaluation.lmEval task's: a metric that was not measured (the message quotes the task's error) fails it.
- Promoted: True when spec.output.promote's InferenceService serves this FineTune, as its model (reason Serving)
  or as one of its spec.adapters (reason ServingAdapter) (only with promote).
Ready needs Succeeded, and Evaluated and GatesPassed when an evaluation is configured. A failed
gate ends the FineTune in phase GateFailed: its output exists but nothing will serve it.

The job reports raw metrics only (scores, safety); the gate is decided here, from those metrics and
the spec's gates (scoring.evaluation.gate). A verdict the job writes into its report is ignored: the
report ConfigMap is the job's to write, so a job must not be able to pass its own gate.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from llmops_operator.api.v1alpha1.finetune import EvaluationSpec, EvaluationStatus, FineTune
from llmops_operator.core.contract import Observation, Refs
from llmops_operator.core import conditions as cond
from llmops_operator.scoring.evaluation import gate, lm_eval_checks
from llmops_operator.status.batchjob import report

EVALUATED = "Evaluated"
GATES_PASSED = "GatesPassed"
PROMOTED = "Promoted"
REPORTED = ("scores", "safety", "redTeam", "lmEval", "reportUri")
"""The blocks of the job's evaluation report that status takes."""


def reported_evaluation(progress_configmap: dict[str, Any] | None) -> EvaluationStatus | None:
    """The metrics the runtime reported (scores, safety, report URI), or None when absent or malformed."""
    block = report(progress_configmap).get("evaluation")
    if not isinstance(block, dict):
        return None
    try:
        return EvaluationStatus.model_validate({k: block[k] for k in REPORTED if k in block})
    except ValidationError:
        return None


def gated_evaluation(ft: FineTune, progress_configmap: dict[str, Any] | None) -> EvaluationStatus | None:
    """The evaluation with the operator's gate verdict; the last status's metrics when the report is gone."""
    evaluation = reported_evaluation(progress_configmap)
    if evaluation is None and ft.status is not None and ft.status.evaluation is not None:
        evaluation = ft.status.evaluation.model_copy()
    if evaluation is None:
        return None
    spec = ft.spec.evaluation
    evaluation.primary_metric = spec.primary_metric or spec.metrics[0]
    safety = evaluation.safety.score if evaluation.safety is not None else None
    gates = ft.spec.gates.model_dump(by_alias=True) if ft.spec.gates else {}
    if spec.judge is not None and spec.judge.threshold is not None:
        gates["minJudgeScore"] = spec.judge.threshold
    red_team = evaluation.red_team.score if evaluation.red_team is not None else None
    lm_eval = {name: result.wire() for name, result in (evaluation.lm_eval or {}).items()}
    evaluation.gate, evaluation.gate_message = gate(evaluation.scores, evaluation.primary_metric, safety, gates,
                                                    red_team, lm_eval_checks(_lm_eval_gates(spec), lm_eval))
    return evaluation


def _summary(evaluation: EvaluationStatus) -> str:
    """The scores, then each lm-eval task's first metric or its error (errors are cut to 200 characters)."""
    parts = [f"{k}={v}" for k, v in evaluation.scores.items()]
    for name, task in (evaluation.lm_eval or {}).items():
        first = next(iter(task.scores.items()), None)
        parts.append(f"lmEval {name}: " + (f"{first[0]}={first[1]}" if first else f"error {(task.error or '')[:200]}"))
    return ", ".join(parts)


def _lm_eval_gates(spec: EvaluationSpec) -> list[tuple[str, str, float | None, float | None]]:
    tasks = spec.lm_eval.tasks if spec.lm_eval else []
    return [(t.name, t.gate.metric, t.gate.min, t.gate.max) for t in tasks if t.gate is not None]


def _promotion(ft: FineTune, refs: Refs) -> cond.Observed:
    name = ft.spec.output.promote.inference_service_ref.name
    service = refs.get(("InferenceService", name))
    if service is None:
        return cond.false(PROMOTED, "InferenceServiceNotFound",
                          f"spec.output.promote: InferenceService {name!r} does not exist in this namespace")
    spec = service.get("spec") or {}
    serves = ((spec.get("model") or {}).get("fineTuneRef") or {}).get("name")
    adapter = next((a.get("name") for a in spec.get("adapters") or []
                    if (a.get("fineTuneRef") or {}).get("name") == ft.name), None)
    if adapter is not None:
        return cond.true(PROMOTED, "ServingAdapter", f"InferenceService {name!r} serves this adapter as model "
                                                     f"{adapter!r}, without restarting its base model")
    if serves != ft.name:
        return cond.false(PROMOTED, "NotReferenced",
                          f"InferenceService {name!r} does not serve this FineTune: set its spec.model.fineTuneRef, "
                          f"or add it to spec.adapters, as {ft.name!r} (the operator never edits your spec)")
    return cond.true(PROMOTED, "Serving", f"InferenceService {name!r} serves this output")


def finetune_outcome(ft: FineTune, job: Observation, progress_configmap: dict[str, Any] | None,
                     refs: Refs) -> Observation:
    """The job's observation with evaluation, gate and promotion folded in."""
    if job.phase != "Succeeded" or ft.spec.evaluation is None:
        if job.phase == "Succeeded" and ft.spec.output.promote:
            return _with(job, [_promotion(ft, refs)], "Succeeded")
        return job
    evaluation = gated_evaluation(ft, progress_configmap)
    if evaluation is None:
        evaluated = cond.false(EVALUATED, "EvaluationMissing",
                               "the Ray job finished without reporting its evaluation; see the job's logs")
        return _with(job, [evaluated], "Failed")
    evaluated = cond.true(EVALUATED, "Evaluated", _summary(evaluation))
    job.fields["evaluation"] = evaluation.wire()
    if evaluation.safety is not None:
        job.fields["safety"] = evaluation.safety.wire()
    if evaluation.gate == "Failed":
        gates = cond.false(GATES_PASSED, "GateFailed", evaluation.gate_message or "a gate failed")
        return _with(job, [evaluated, gates], "GateFailed")
    gates = cond.true(GATES_PASSED, "GatesPassed", evaluation.gate_message or "")
    extra = [evaluated, gates] + ([_promotion(ft, refs)] if ft.spec.output.promote else [])
    result = _with(job, extra, "Succeeded")
    if ft.spec.output.promote and extra[-1].status == "True":
        result.fields["promotedTo"] = ft.spec.output.promote.inference_service_ref.name
    return result


def _with(job: Observation, extra: list[cond.Observed], phase: str) -> Observation:
    """Insert `extra` before Ready and re-aggregate Ready over Succeeded plus the evaluation conditions."""
    others = [c for c in job.conditions if c.type != cond.READY]
    conditions = others + extra
    required = ["Succeeded", *(c.type for c in extra if c.type != PROMOTED)]
    conditions.append(cond.aggregate_ready(conditions, required, "Succeeded"))
    return Observation(conditions=conditions, phase=phase, fields=job.fields)
