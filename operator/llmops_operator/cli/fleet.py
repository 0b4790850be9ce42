"""The fleet table: every llmops.dev object with Ready, phase, cost, drift and safety (pure)."""

from __future__ import annotations

from typing import Any, Iterable

from llmops_operator.core.conditions import ready_of

HEADERS = ("NAMESPACE", "KIND", "NAME", "READY", "PHASE", "COST", "DRIFT", "SAFETY", "MESSAGE")


def _number(value: Any, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _money(cost: dict[str, Any]) -> str:
    """Jobs show what they have cost so far; services, which run open-ended, what they cost per hour."""
    currency = cost.get("currency", "USD")
    if cost.get("estimate") is None and cost.get("hourlyRate") is not None:
        return f"{cost['hourlyRate']:.4f} {currency}/h"
    return "-" if cost.get("accrued") is None else f"{cost['accrued']:.4f} {currency}"


def row(obj: dict[str, Any]) -> tuple[str, ...]:
    status = obj.get("status") or {}
    ready = ready_of(status)
    cost = status.get("cost") or {}
    money = _money(cost)
    message = ready.get("message") or ready.get("reason") or ""
    return (
        obj["metadata"].get("namespace", ""), obj["kind"], obj["metadata"]["name"],
        ready.get("status", "-"), status.get("phase") or "-", money,
        _number((status.get("drift") or {}).get("score"), 3),
        _number((status.get("safety") or {}).get("score"), 3),
        message if len(message) <= 60 else message[:57] + "...",
    )


def table(objects: Iterable[dict[str, Any]]) -> str:
    rows = [HEADERS] + sorted(row(o) for o in objects)
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADERS))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows)
