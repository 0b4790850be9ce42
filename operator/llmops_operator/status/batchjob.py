"""batch/v1 Job and CronJob status as their controllers write it, reduced to a few facts (pure).

A Job has finished when its Complete or Failed condition is True (Kubernetes 1.31+ first sets
SuccessCriteriaMet / FailureTarget, then Complete / Failed once its pods are gone; either counts).
Until then it is Running while pods are active and Pending before that.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from llmops_operator.builders.progress import PROGRESS_KEY

PENDING, RUNNING, SUCCEEDED, FAILED = "Pending", "Running", "Succeeded", "Failed"


@dataclass(frozen=True)
class JobState:
    state: str
    """Pending, Running, Succeeded or Failed."""
    reason: str = ""
    message: str = ""
    completion_time: str | None = None


def _true(status: dict[str, Any], *types: str) -> dict[str, Any] | None:
    return next((c for c in status.get("conditions") or [] if c.get("type") in types and c.get("status") == "True"),
                None)


def job_state(job: dict[str, Any] | None) -> JobState:
    status = (job or {}).get("status") or {}
    failed = _true(status, "Failed", "FailureTarget")
    if failed:
        return JobState(FAILED, failed.get("reason") or "JobFailed", failed.get("message") or "the Job failed")
    done = _true(status, "Complete", "SuccessCriteriaMet")
    if done:
        return JobState(SUCCEEDED, done.get("reason") or "Completed", done.get("message") or "",
                        status.get("completionTime"))
    if status.get("active"):
        retries = status.get("failed") or 0
        message = f"{status['active']} pod(s) running" + (f" after {retries} failed attempt(s)" if retries else "")
        return JobState(RUNNING, "JobRunning", message)
    return JobState(PENDING, "JobPending", "the Job has not started a pod yet")


@dataclass(frozen=True)
class CronJobState:
    active: int
    last_schedule_time: str | None
    last_successful_time: str | None


def cronjob_state(cronjob: dict[str, Any] | None) -> CronJobState:
    status = (cronjob or {}).get("status") or {}
    return CronJobState(len(status.get("active") or []), status.get("lastScheduleTime"),
                        status.get("lastSuccessfulTime"))


def report(progress_configmap: dict[str, Any] | None) -> dict[str, Any]:
    """The JSON object a runtime last wrote to the progress ConfigMap; {} when absent or malformed."""
    raw = ((progress_configmap or {}).get("data") or {}).get(PROGRESS_KEY)
    try:
        value = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def find(live: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any] | None:
    return next((c for c in live if c.get("kind") == kind and c["metadata"]["name"] == name), None)
