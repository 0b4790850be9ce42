"""Status of TrainingJob and FineTune, reduced from the RayJob as KubeRay writes it (pure).

Conditions (each reported on every pass):
- Submitted: the RayJob exists and KubeRay has picked it up (jobDeploymentStatus set). Informational.
- Succeeded: True when the Ray job SUCCEEDED; False with KubeRay's reason when it failed, was stopped,
  or missed a deadline; Unknown while it runs.
- Suspended: True while spec.suspend holds the job (KubeRay Suspending/Suspended).
- BudgetExceeded, BudgetFitsEstimate: only with spec.budget (see scoring/budget.py). With action Suspend or
  Stop, a measured spend at the limit holds the job: the RayJob is rendered suspended (KubeRay stops the job
  and frees its cluster), Suspended is True with reason BudgetExceeded and the phase reads Suspended (raise
  the limit to resume from the last checkpoint) or Stopped.
- Ready: True once Succeeded is True: a job is ready when its output exists.

Succeeded True or False is final for the run it describes (status.rayJob.name): the operator never
re-creates that run's RayJob, and once the RayJob is gone (deleted, or collected after its TTL) the
last status stands (`finished_observation`) until a spec change makes a new run.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import ValidationError

from llmops_operator.api.v1alpha1.training import CheckpointStatus, JobSpecCommon, ProgressStatus, RayJobRef
from llmops_operator.builders.labels import child_in_role
from llmops_operator.builders.progress import PROGRESS_COMPONENT
from llmops_operator.builders.rayjob import RAYJOB_COMPONENT
from llmops_operator.core.contract import Observation
from llmops_operator.core.pricing import PriceCatalog
from llmops_operator.scoring.budget import (
    BUDGET_EXCEEDED, BUDGET_FITS, JobHold, job_budget_conditions, job_hold, recorded_spend,
)
from llmops_operator.scoring.job_cost import job_cost
from llmops_operator.core import conditions as cond
from llmops_operator.status.batchjob import report

SUBMITTED = "Submitted"
SUCCEEDED = "Succeeded"
SUSPENDED = "Suspended"

_PHASES = {
    "": "Pending", "New": "Pending", "Initializing": "Initializing", "Waiting": "Initializing",
    "Running": "Running", "Retrying": "Retrying", "Suspending": "Suspended", "Suspended": "Suspended",
    "Failed": "Failed", "ValidationFailed": "Failed",
}


def phase_of(deployment_status: str, job_status: str) -> str:
    if deployment_status == "Complete":
        return "Succeeded" if job_status == "SUCCEEDED" else "Failed"
    return _PHASES.get(deployment_status, "Running")


def ray_job_ref(rayjob: dict[str, Any]) -> RayJobRef:
    status = rayjob.get("status") or {}
    return RayJobRef(
        name=rayjob["metadata"]["name"], submission_id=rayjob["spec"].get("jobId", ""),
        job_status=status.get("jobStatus") or None, deployment_status=status.get("jobDeploymentStatus") or None,
        message=status.get("message") or None,
    )


def _succeeded(phase: str, status: dict[str, Any]) -> cond.Observed:
    message = status.get("message") or ""
    if phase == "Succeeded":
        return cond.true(SUCCEEDED, "RayJobSucceeded", "the Ray job finished successfully")
    if phase == "Failed":
        reason = status.get("reason") or ("RayJob" + (status.get("jobStatus") or "Failed").title())
        return cond.false(SUCCEEDED, reason, message or "the Ray job failed")
    return cond.unknown(SUCCEEDED, phase, message or f"the Ray job is {phase.lower()}")


def reported(progress_configmap: dict[str, Any] | None) -> dict[str, Any]:
    """What the job's runtime last reported: {"progress": ..., "checkpoint": ...} as status blocks.

    The report is the job's own writing, so anything malformed is dropped rather than trusted.
    """
    values = report(progress_configmap)
    fields: dict[str, Any] = {}
    for key, model in (("progress", ProgressStatus), ("checkpoint", CheckpointStatus)):
        try:
            if isinstance(values.get(key), dict):
                fields[key] = model.model_validate(values[key]).wire()
        except ValidationError:
            continue
    return fields


def rayjob_and_progress(live: list[dict[str, Any]]) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The live RayJob and progress ConfigMap of a job, each picked by kind and role."""
    return (child_in_role(live, "RayJob", RAYJOB_COMPONENT), child_in_role(live, "ConfigMap", PROGRESS_COMPONENT))


def missing_rayjob(spec: JobSpecCommon, catalog: PriceCatalog, now: datetime) -> Observation:
    """A pass whose apply did not return the RayJob it built: nothing is known to run yet."""
    return waiting_observation(cond.unknown(SUBMITTED, "RayJobMissing", "the API server did not return the RayJob"),
                               spec, catalog, now)


def job_observation(spec: JobSpecCommon, rayjob: dict[str, Any], progress_configmap: dict[str, Any] | None,
                    catalog: PriceCatalog, now: datetime, previous: Any = None) -> Observation:
    """Conditions, phase and status fields of a job whose RayJob is `rayjob` (as the API returned it).

    `previous` is the object's current status (model): the spend it measured decides the budget's hold, and a
    suspended job's cost stays at that reading."""
    status = rayjob.get("status") or {}
    deployment = status.get("jobDeploymentStatus") or ""
    phase = phase_of(deployment, status.get("jobStatus") or "")
    start, end = cond.parse_rfc3339(status.get("startTime")), cond.parse_rfc3339(status.get("endTime"))
    cost = job_cost(spec, catalog, start, end if phase in ("Succeeded", "Failed") else None, now)
    hold = job_hold(spec.budget, recorded_spend(previous))
    if phase == "Suspended" and previous is not None and previous.cost is not None:
        cost.accrued = previous.cost.accrued  # nothing runs while suspended, so nothing accrues
    if hold and phase not in ("Succeeded", "Failed"):
        phase = "Stopped" if hold == "Stop" else "Suspended"

    conditions = [
        cond.true(SUBMITTED, "RayJobAccepted", f"KubeRay reports {deployment}") if deployment
        else cond.unknown(SUBMITTED, "WaitingForKubeRay", "the RayJob has not been picked up by KubeRay yet"),
        _succeeded(phase, status),
        _suspended(phase, hold, spec),
    ]
    conditions += job_budget_conditions(spec.budget, cost)
    conditions.append(cond.aggregate_ready(conditions, [SUCCEEDED], "Succeeded"))
    fields = {
        **reported(progress_configmap),
        "rayJob": ray_job_ref(rayjob).wire(),
        "cost": cost.wire(),
        "startTime": status.get("startTime"),
        "completionTime": status.get("endTime") if phase in ("Succeeded", "Failed") else None,
    }
    return Observation(conditions=conditions, phase=phase, fields={k: v for k, v in fields.items() if v is not None})


def _suspended(phase: str, hold: JobHold | None, spec: JobSpecCommon) -> cond.Observed:
    if hold:
        verb = "stopped" if hold == "Stop" else "suspended"
        return cond.true(SUSPENDED, "BudgetExceeded",
                         f"{verb} by spec.budget.action {hold}: the budget of {spec.budget.limit} is spent"
                         + ("" if hold == "Stop" else "; raise spec.budget.limit to resume"))
    if phase == "Suspended":
        return cond.true(SUSPENDED, "SuspendedBySpec", "spec.suspend is true")
    return cond.false(SUSPENDED, "NotSuspended")


def waiting_observation(condition: cond.Observed, spec: JobSpecCommon, catalog: PriceCatalog,
                        now: datetime) -> Observation:
    """A job that cannot start yet (its base model is not ready), or cannot start at all until a dependency
    is fixed (Blocked): nothing runs, nothing accrues."""
    cost = job_cost(spec, catalog, None, None, now)
    ready = cond.Observed(cond.READY, condition.status, condition.reason, condition.message)
    phase = "Blocked" if condition.reason.endswith("Failed") else "Waiting"
    return Observation(conditions=[condition, ready], phase=phase, fields={"cost": cost.wire()})


JOB_CONDITIONS = (SUBMITTED, SUCCEEDED, SUSPENDED, BUDGET_FITS, BUDGET_EXCEEDED)
JOB_FIELDS = ("progress", "checkpoint", "rayJob", "cost", "startTime", "completionTime")


def finished(previous: Any, rayjob_name: str, generation: int | None) -> bool:
    """Whether `previous` (the object's last status) says the current run ended, well or not.

    The current run is the one named `rayjob_name`, or whichever run the status recorded while the spec was
    at this `generation` (a run recorded under an older naming scheme is still this spec's run)."""
    if previous is None or previous.ray_job is None:
        return False
    if previous.ray_job.name != rayjob_name and (generation is None or previous.observed_generation != generation):
        return False
    succeeded = next((c for c in previous.conditions if c.type == SUCCEEDED), None)
    return succeeded is not None and succeeded.status in ("True", "False")


def finished_observation(previous: Any) -> Observation:
    """A finished run whose RayJob is gone: the job's conditions and fields as last reported."""
    kept = [cond.Observed(c.type, c.status, c.reason, c.message or "")
            for c in previous.conditions if c.type in JOB_CONDITIONS]
    kept.append(cond.aggregate_ready(kept, [SUCCEEDED], "Succeeded"))
    succeeded = next(c for c in kept if c.type == SUCCEEDED)
    wire = previous.wire()
    return Observation(conditions=kept, phase="Succeeded" if succeeded.status == "True" else "Failed",
                       fields={k: wire[k] for k in JOB_FIELDS if k in wire})
