"""Status of a FeatureView, reduced from its apply and materialize Jobs and the runtimes' report (pure).

Conditions (each reported on every pass):
- Registered: set from the apply Job of the current definition. True once it succeeded (entities,
  source and view are in the Feast registry); False with the Job's reason when it failed; Unknown
  while it is pending or running. Counts toward Ready.
- Materialized: only for online views. From the materialize Job each definition gets right away, as
  Registered is from the apply Job; with a schedule, a later successful CronJob run (lastSuccessfulTime,
  or a materialization in the report) also counts, so a failed first run heals on schedule. Counts
  toward Ready.
- Ready: True when every condition above is True.

Phase: Registering, Materializing, Ready, Failed.
The report (progress ConfigMap, written by the runtimes) gives lastMaterialized, rows,
freshnessLag and the drift block.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import ValidationError

from llmops_operator.api.v1alpha1.common import DriftStatus
from llmops_operator.api.v1alpha1.featureview import FeatureView
from llmops_operator.api.v1alpha1.units import DURATION_PATTERN
from llmops_operator.core.contract import Observation
from llmops_operator.core import conditions as cond
from llmops_operator.status.batchjob import FAILED, RUNNING, SUCCEEDED, JobState, cronjob_state, job_state, report

REGISTERED = "Registered"
MATERIALIZED = "Materialized"
_DURATION = re.compile(DURATION_PATTERN)


def _from_job(type_: str, state: JobState, done_reason: str, done_message: str, running_reason: str) -> cond.Observed:
    if state.state == SUCCEEDED:
        return cond.true(type_, done_reason, done_message)
    if state.state == FAILED:
        return cond.false(type_, state.reason, state.message)
    return cond.unknown(type_, running_reason if state.state == RUNNING else "Pending", state.message)


def _from_cronjob(cronjob: dict[str, Any], values: dict[str, Any], schedule: str) -> cond.Observed:
    state = cronjob_state(cronjob)
    if state.last_successful_time or values.get("lastMaterialized"):
        when = state.last_successful_time or values.get("lastMaterialized")
        return cond.true(MATERIALIZED, "Materialized", f"last materialized at {when}; runs on schedule {schedule}")
    if state.active:
        return cond.unknown(MATERIALIZED, "Materializing", "the first scheduled materialization is running")
    return cond.unknown(MATERIALIZED, "WaitingForSchedule", f"the first materialization runs on schedule {schedule}")


def reported(values: dict[str, Any]) -> dict[str, Any]:
    """lastMaterialized, rows, freshnessLag and drift from the report, each only when well-formed."""
    fields: dict[str, Any] = {}
    if isinstance(values.get("lastMaterialized"), str):
        fields["lastMaterialized"] = values["lastMaterialized"]
    if isinstance(values.get("rows"), int) and not isinstance(values["rows"], bool):
        fields["rows"] = values["rows"]
    lag = values.get("freshnessLag")
    if isinstance(lag, str) and _DURATION.match(lag):
        fields["freshnessLag"] = lag
    if isinstance(values.get("drift"), dict):
        try:
            fields["drift"] = DriftStatus.model_validate(values["drift"]).wire()
        except ValidationError:
            pass
    return fields


def _materialized(obj: FeatureView, job: dict[str, Any] | None, cronjob: dict[str, Any] | None,
                  values: dict[str, Any]) -> cond.Observed:
    now = _from_job(MATERIALIZED, job_state(job), "Materialized",
                    f"{obj.feast_name} is loaded into the online store", "Materializing")
    if cronjob is None:
        return now
    scheduled = _from_cronjob(cronjob, values, obj.spec.materialize.schedule)
    if now.status == "True":
        return cond.true(MATERIALIZED, now.reason, f"{now.message}; refreshed on schedule {obj.spec.materialize.schedule}")
    return scheduled if scheduled.status == "True" else now


def featureview_observation(obj: FeatureView, apply_job: dict[str, Any] | None,
                            materialize: dict[str, Any] | None, progress: dict[str, Any] | None,
                            cronjob: dict[str, Any] | None = None) -> Observation:
    """`materialize` is the one-shot Job (None for an offline-only view), `cronjob` the scheduled one."""
    values = report(progress)
    apply_state = job_state(apply_job)
    registered = _from_job(REGISTERED, apply_state, "Applied",
                           f"{obj.feast_name} is registered in Feast project {obj.spec.project}", "Applying")
    conditions = [registered]
    if materialize is not None:
        conditions.append(_materialized(obj, materialize, cronjob, values))
    required = [c.type for c in conditions]
    conditions.append(cond.aggregate_ready(conditions, required, "Ready"))
    if any(c.status == "False" for c in conditions[:-1]):
        phase = "Failed"
    elif registered.status != "True":
        phase = "Registering"
    elif conditions[-1].status != "True":
        phase = "Materializing"
    else:
        phase = "Ready"
    return Observation(conditions=conditions, phase=phase,
                       fields={"registered": registered.status == "True", **reported(values)})
