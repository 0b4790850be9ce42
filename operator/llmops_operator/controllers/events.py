"""Kubernetes Events on state transitions: one `v1` Event when an object's phase or Ready status changes.

Status stays the source of truth (programs read conditions); Events are the history `kubectl describe` shows
a person: "Running -> Succeeded". Posting is best effort: an Event that cannot be written is logged, never
a reason to fail or retry a reconcile that already wrote its status.

Repeats aggregate: an Event is named after its object, reason and message, so the same Event posted again (a
pass that ran on a body from before the last status write, or the same transition later) raises the existing
one's count and lastTimestamp instead of adding a row, as Kubernetes' own event recorder does.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime
from typing import Any

from llmops_operator.k8s.client import ApiClient, ApiError, Conflict
from llmops_operator.core import conditions as cond

log = logging.getLogger("llmops.events")

COMPONENT = "llmops-operator"


def transition_event(body: dict[str, Any], new: dict[str, Any], now: datetime) -> dict[str, Any] | None:
    """The Event for going from body's status to `new`, or None when neither phase nor Ready moved (pure).

    reason: the Ready reason when Ready flipped, else the new phase; type Warning when Ready turned False.
    """
    old = body.get("status") or {}
    old_ready, new_ready = cond.ready_of(old), cond.ready_of(new)
    old_phase, new_phase = old.get("phase"), new.get("phase")
    ready_flipped = old_ready.get("status") != new_ready.get("status")
    if not ready_flipped and old_phase == new_phase:
        return None
    reason = (new_ready.get("reason") if ready_flipped else None) or new_phase or "StatusChanged"
    moves = []
    if old_phase != new_phase:
        moves.append(f"phase {old_phase or '(none)'} -> {new_phase}")
    if ready_flipped:
        moves.append(f"Ready {old_ready.get('status', '(none)')} -> {new_ready.get('status')}")
    detail = new_ready.get("message") or new_ready.get("reason") or ""
    meta = body["metadata"]
    involved = {"apiVersion": body["apiVersion"], "kind": body["kind"], "name": meta["name"],
                "namespace": meta["namespace"], "uid": meta.get("uid")}
    return event(involved, reason, "; ".join(moves) + (f": {detail}" if detail else ""),
                 "Warning" if new_ready.get("status") == "False" else "Normal", now)


def event(involved: dict[str, Any], reason: str, message: str, event_type: str,
          now: datetime | str) -> dict[str, Any]:
    """A v1 Event about `involved` (apiVersion, kind, name, namespace, uid); event_type is Normal or Warning (pure)."""
    stamp = now if isinstance(now, str) else cond.now_rfc3339(now)
    key = "\0".join([involved.get("uid") or involved["name"], reason, message])
    name = f"{involved['name']}.{hashlib.sha256(key.encode()).hexdigest()[:16]}"
    return {
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": name, "namespace": involved["namespace"]},
        "involvedObject": involved, "reason": reason, "message": message, "type": event_type,
        "source": {"component": COMPONENT}, "reportingComponent": COMPONENT,
        "firstTimestamp": stamp, "lastTimestamp": stamp, "count": 1,
    }


def involved(obj: Any) -> dict[str, Any]:
    """The involvedObject of an Event about a typed resource."""
    return {"apiVersion": obj.api_version, "kind": obj.kind, "name": obj.name, "namespace": obj.namespace,
            "uid": obj.metadata.uid}


async def post(api: ApiClient, event: dict[str, Any]) -> dict[str, Any] | None:
    """Post `event`, or count it again on the one already posted (best effort: a failure is logged)."""
    about = event["involvedObject"]
    path = f"/api/v1/namespaces/{about['namespace']}/events"
    try:
        try:
            return await api.request("POST", path, event)
        except Conflict:
            existing = await api.request("GET", f"{path}/{event['metadata']['name']}")
            again = {"count": int(existing.get("count") or 1) + 1, "lastTimestamp": event["lastTimestamp"]}
            return await api.request("PATCH", f"{path}/{event['metadata']['name']}", again,
                                     content_type="application/merge-patch+json")
    except ApiError as err:
        log.warning("%s %s/%s: could not post Event %s: %s", about["kind"], about["namespace"], about["name"],
                    event["reason"], err)
        return None


async def announce(api: ApiClient, body: dict[str, Any], new: dict[str, Any], now: datetime) -> dict[str, Any] | None:
    """Post the transition Event, if any; returns what was posted."""
    transition = transition_event(body, new, now)
    return None if transition is None else await post(api, transition)
