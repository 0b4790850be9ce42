"""Conditions: pure helpers to set, merge and aggregate them, and to derive the phase.

Reducers return the conditions they observed *now* (type, status, reason, message); `merge`
carries lastTransitionTime forward when a condition's status did not change, so status is
stable across reconciles and is only written when something really changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable

READY = "Ready"
INVALID_SPEC = "InvalidSpec"


@dataclass(frozen=True)
class Observed:
    """A condition as a reducer sees it, before timestamps."""

    type: str
    status: str  # "True" | "False" | "Unknown"
    reason: str
    message: str = ""


def true(type_: str, reason: str, message: str = "") -> Observed:
    return Observed(type_, "True", reason, message)


def false(type_: str, reason: str, message: str = "") -> Observed:
    return Observed(type_, "False", reason, message)


def unknown(type_: str, reason: str, message: str = "") -> Observed:
    return Observed(type_, "Unknown", reason, message)


def now_rfc3339(now: datetime | None = None) -> str:
    return (now or datetime.now(timezone.utc)).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(text: str | None) -> datetime | None:
    """An RFC 3339 timestamp (Z or offset) as an aware datetime; None when absent or unreadable, so a status field
    someone mangled reads as missing instead of failing every pass."""
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def merge(previous: Iterable[dict[str, Any]], observed: Iterable[Observed], generation: int | None,
          now: str) -> list[dict[str, Any]]:
    """The new conditions list: observed conditions, timestamps kept where status did not flip.

    Conditions a reducer no longer reports are dropped: each reducer reports the full set it owns.
    """
    before = {c.get("type"): c for c in previous}
    merged = []
    for cond in observed:
        old = before.get(cond.type)
        transition = old["lastTransitionTime"] if old and old.get("status") == cond.status else now
        merged.append({
            "type": cond.type, "status": cond.status, "reason": cond.reason, "message": cond.message,
            "lastTransitionTime": transition, "observedGeneration": generation,
        })
    return merged


def aggregate_ready(conditions: Iterable[Observed], required: Iterable[str], ready_reason: str = "Ready",
                    ready_message: str = "") -> Observed:
    """Ready is True when every required condition is True; otherwise the first one that is not, explained."""
    by_type = {c.type: c for c in conditions}
    for type_ in required:
        cond = by_type.get(type_)
        if cond is None:
            return unknown(READY, f"{type_}Unknown", f"{type_} has not been observed yet")
        if cond.status != "True":
            status = "False" if cond.status == "False" else "Unknown"
            return Observed(READY, status, cond.reason, cond.message)
    return true(READY, ready_reason, ready_message)


def invalid_spec(message: str) -> list[Observed]:
    """The condition set for a spec the operator cannot act on."""
    return [false(READY, INVALID_SPEC, message)]


def find(conditions: Iterable[dict[str, Any]], type_: str) -> dict[str, Any] | None:
    return next((c for c in conditions if c.get("type") == type_), None)


def ready_of(status: dict[str, Any] | None) -> dict[str, Any]:
    """The Ready condition of a status as the API returns it (camelCase dict); {} when it has none."""
    return find((status or {}).get("conditions") or [], READY) or {}


def is_ready(status: dict[str, Any] | None) -> bool:
    """Whether a status as the API returns it says Ready=True."""
    return ready_of(status).get("status") == "True"
