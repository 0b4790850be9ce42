"""The fleet table: every llmops.dev object with Ready, phase, cost, drift and safety (pure)."""

from __future__ import annotations

from typing import Any, Iterable

HEADERS = ("NAMESPACE", "KIND", "NAME", "READY", "PHASE", "COST", "DRIFT", "SAFETY", "MESSAGE")


def _number(value: Any, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _ready(status: dict[str, Any]) -> dict[str, Any]:
    return next((c for c in status.get("conditions", []) if c.get("type") == "Ready"), {})


def row(obj: dict[str, Any]) -> tuple[str, ...]:
    status = obj.get("status") or {}
    ready = _ready(status)
    cost = status.get("cost") or {}
    accrued = cost.get("accrued")
    money = "-" if accrued is None else f"{accrued:.4f} {cost.get('currency', 'USD')}"
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
