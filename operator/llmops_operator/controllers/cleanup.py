"""The rules every finalizer follows, so that deleting an object never hangs without saying why.

A reconciler's `finalize` returns a `Cleanup`: Done (the object may go), Running (look again soon) or
Failed (with a reason). `finalize_pass` wraps it:

- the escape hatch first: with the annotation `llmops.dev/skip-cleanup: "true"` the object goes at once and
  what it built outside Kubernetes stays (a Warning Event `CleanupSkipped` says so);
- the object is parsed leniently (`parse_leniently`): its status is never read, and spec fields the current
  model rejects (an object written under another version of the operator) fall back to their defaults; a spec
  still unreadable is a failure (`UnreadableSpec`), unless its deletionPolicy asks for no cleanup;
- API errors are retried with exponential backoff, at most MAX_API_ATTEMPTS times in a row, then count as a
  failure (`ApiError`);
- a failure sets the condition `CleanupFailed=True` with the reason and the message, posts a Warning Event
  of the same reason, and the finalizer keeps the object, looking again every `cleanup_recheck_seconds` of the
  settings (the cleanup may recover, or someone sets the escape hatch).
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import ValidationError

from llmops_operator.api.v1alpha1.common import GROUP, Resource
from llmops_operator.controllers import events
from llmops_operator.core import conditions as cond
from llmops_operator.core.contract import Context, InvalidSpec, describe_validation_error
from llmops_operator.k8s.client import ApiClient, ApiError
from llmops_operator.k8s.resources import ApiResource
from llmops_operator.status.batchjob import FAILED, SUCCEEDED, job_state

SKIP_ANNOTATION = f"{GROUP}/skip-cleanup"
"""Set to "true" on an object being deleted: it goes without cleaning up outside Kubernetes."""
CLEANUP_FAILED = "CleanupFailed"
MAX_API_ATTEMPTS = 5
API_BACKOFF_SECONDS = 2.0
MAX_API_BACKOFF_SECONDS = 60.0
POLL_SECONDS = 5.0
LENIENT_ROUNDS = 16
"""How many rejected spec fields a lenient parse drops before it gives up."""

log = logging.getLogger("llmops.cleanup")


@dataclass(frozen=True)
class Cleanup:
    """Where a finalizer's cleanup stands; reason and message say why when it failed."""

    state: Literal["Done", "Running", "Failed"]
    reason: str = ""
    message: str = ""


DONE = Cleanup("Done")


def running(message: str) -> Cleanup:
    return Cleanup("Running", "CleanupRunning", message)


def failed(reason: str, message: str) -> Cleanup:
    return Cleanup("Failed", reason, message)


def skip_requested(body: dict[str, Any]) -> bool:
    annotations = (body.get("metadata") or {}).get("annotations") or {}
    return str(annotations.get(SKIP_ANNOTATION, "")).strip().lower() == "true"


def api_retry_delay(attempt: int) -> float:
    """Seconds before retry `attempt` (1, 2, ...) after an API error: exponential, at most MAX_API_BACKOFF_SECONDS."""
    return min(API_BACKOFF_SECONDS * 2 ** (attempt - 1), MAX_API_BACKOFF_SECONDS)


def waited_seconds(job: dict[str, Any], now: datetime) -> float:
    """How long ago the Job was created (0 when the API did not say)."""
    created = cond.parse_rfc3339(job.get("metadata", {}).get("creationTimestamp"))
    return 0.0 if created is None else (now - created).total_seconds()


def namespace_terminating(err: ApiError) -> bool:
    """Whether the API server refused a create because the namespace is being deleted (pure)."""
    causes = (err.body.get("details") or {}).get("causes") or []
    return err.status == 403 and (any(c.get("reason") == "NamespaceTerminating" for c in causes)
                                  or "because it is being terminated" in err.body.get("message", ""))


def job_cleanup(job: dict[str, Any], now: datetime, what: str, timeout_seconds: float) -> Cleanup:
    """The state of a cleanup that a Job does (`what` says what it does, for messages)."""
    state, name = job_state(job), job["metadata"]["name"]
    hatch = f"delete the Job {name} to try again, or annotate the object {SKIP_ANNOTATION}=true to leave it"
    if state.state == SUCCEEDED:
        return DONE
    if state.state == FAILED:
        return failed("CleanupJobFailed", f"{what}: the Job {name} failed ({state.message}); {hatch}")
    if waited_seconds(job, now) > timeout_seconds:
        return failed("CleanupJobTimedOut", f"{what}: the Job {name} has not finished in {timeout_seconds:g}s "
                                            f"({state.message}); {hatch}")
    return running(f"{what}: {state.message}")


def _drop(tree: dict[str, Any], loc: tuple[Any, ...]) -> bool:
    """Remove the value at `loc` (a pydantic error location) from `tree`; False when there is none to remove."""
    if len(loc) < 2 or loc[0] != "spec":
        return False
    node: Any = tree
    for key in loc[:-1]:
        if isinstance(node, dict) and key in node:
            node = node[key]
        elif isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node):
            node = node[key]
        else:
            return False
    last = loc[-1]
    if isinstance(node, dict) and last in node:
        del node[last]
        return True
    return False


def parse_leniently(resource: type[Resource], body: dict[str, Any]) -> Resource:
    """The object as the current model reads it, without its status, dropping spec fields it rejects (which then
    take their defaults); InvalidSpec naming the fields when that is not enough (a required field is unreadable)."""
    candidate = copy.deepcopy({k: v for k, v in dict(body).items() if k != "status"})
    first: ValidationError | None = None
    for _ in range(LENIENT_ROUNDS):
        try:
            return resource.model_validate(candidate, by_alias=True, by_name=False)
        except ValidationError as err:
            first = first or err
            problems = err.errors()
            if any(p["type"] == "missing" for p in problems) or \
                    not all([_drop(candidate, tuple(p["loc"])) for p in problems]):
                break
    raise InvalidSpec(describe_validation_error(first))


def asks_for_cleanup(resource: type[Resource], body: dict[str, Any]) -> bool:
    """Whether the raw spec's deletionPolicy (or the model's default) is Delete (pure)."""
    spec_model = resource.model_fields["spec"].annotation
    default = spec_model.model_fields["deletion_policy"].default if "deletion_policy" in spec_model.model_fields \
        else "Delete"
    return ((body.get("spec") or {}).get("deletionPolicy") or default) == "Delete"


def failure_condition(body: dict[str, Any], outcome: Cleanup, now: datetime) -> list[dict[str, Any]]:
    """The object's conditions with CleanupFailed set from `outcome` (pure)."""
    status = body.get("status") if isinstance(body.get("status"), dict) else {}
    stored = status.get("conditions")
    # A status written by another version may not even be a list of conditions: it is replaced, never read.
    previous = [c for c in stored if isinstance(c, dict)] if isinstance(stored, list) else []
    observed = cond.true(CLEANUP_FAILED, outcome.reason, outcome.message)
    merged = cond.merge(previous, [observed], body["metadata"].get("generation"), cond.now_rfc3339(now))
    return [c for c in previous if c.get("type") != CLEANUP_FAILED] + merged


def involved(body: dict[str, Any]) -> dict[str, Any]:
    meta = body["metadata"]
    return {"apiVersion": body["apiVersion"], "kind": body["kind"], "name": meta["name"],
            "namespace": meta["namespace"], "uid": meta.get("uid")}


async def report_failure(api: ApiClient, resource: ApiResource, body: dict[str, Any], outcome: Cleanup,
                         now: datetime) -> None:
    """Set CleanupFailed and post its Warning Event when the condition changed (best effort: errors are logged)."""
    meta = body["metadata"]
    log.warning("%s %s/%s: cleanup failed (%s): %s", body["kind"], meta["namespace"], meta["name"], outcome.reason,
                outcome.message)
    conditions = failure_condition(body, outcome, now)
    if isinstance(body.get("status"), dict) and conditions == body["status"].get("conditions"):
        return
    try:
        await api.patch_status(resource, meta["namespace"], meta["name"], {"conditions": conditions})
    except ApiError as err:
        log.warning("%s %s/%s: could not write %s: %s", body["kind"], meta["namespace"], meta["name"],
                    CLEANUP_FAILED, err)
    await events.post(api, events.event(involved(body), CLEANUP_FAILED, f"{outcome.reason}: {outcome.message}",
                                        "Warning", now))


async def finalize_pass(reconciler: Any, api: ApiClient, resource: ApiResource, ctx: Context, body: dict[str, Any],
                        api_failures: dict[str, int]) -> float | None:
    """One pass of an object's finalizer: None when it may go, else the seconds until the next pass.

    `api_failures` counts consecutive API errors per object uid (the caller keeps it between passes)."""
    uid = body["metadata"]["uid"]
    if skip_requested(body):
        meta = body["metadata"]
        message = f"{SKIP_ANNOTATION} is set: what this object built outside Kubernetes is left in place"
        log.warning("%s %s/%s: %s", body["kind"], meta["namespace"], meta["name"], message)
        await events.post(api, events.event(involved(body), "CleanupSkipped", message, "Warning", ctx.now))
        api_failures.pop(uid, None)
        return None
    try:
        obj = parse_leniently(reconciler.resource, body)
    except InvalidSpec as err:
        if not asks_for_cleanup(reconciler.resource, body):
            return None
        outcome = failed("UnreadableSpec", f"the spec cannot be read, so nothing can be cleaned up ({err}); "
                                           f"annotate the object {SKIP_ANNOTATION}=true to let it go")
    else:
        try:
            outcome = await reconciler.finalize(obj, ctx, api)
            api_failures.pop(uid, None)
        except ApiError as err:
            attempts = api_failures[uid] = api_failures.get(uid, 0) + 1
            if attempts < MAX_API_ATTEMPTS:
                log.info("%s %s/%s: cleanup attempt %d: %s", body["kind"], body["metadata"]["namespace"],
                         body["metadata"]["name"], attempts, err)
                return api_retry_delay(attempts)
            outcome = failed("ApiError", f"{attempts} attempts in a row failed, the last with: {err}; "
                                         f"annotate the object {SKIP_ANNOTATION}=true to let it go")
    if outcome.state == "Done":
        return None
    if outcome.state == "Running":
        return POLL_SECONDS
    await report_failure(api, resource, body, outcome, ctx.now)
    return ctx.settings.cleanup_recheck_seconds
