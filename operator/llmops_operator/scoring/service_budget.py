"""A service's spend per budget period, accrued between reconciles from its last status (pure).

A service runs for ever, so its budget is per period: a rolling window of spec.budget.period that restarts at 0
when it ends. Each pass adds the hourly rate the service ran at since the previous pass (the previous status'
cost.hourlyRate, over the time since its cost.updatedAt), unless the previous pass found it not running (stopped
by its budget, or no KServe object yet because a reference was not ready). A clock that went backwards adds nothing; a missing or
unreadable previous status starts a new period at 0, so spend is never negative and never counted twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from llmops_operator.scoring.cost import accrued, money
from llmops_operator.core.conditions import parse_rfc3339

@dataclass(frozen=True)
class PreviousSpend:
    """What the last status said: the period's spend so far, and the rate and phase since its update."""

    spent: float
    period_start: datetime
    updated_at: datetime
    hourly_rate: float
    running: bool


@dataclass(frozen=True)
class PeriodSpend:
    spent: float
    period_start: datetime

    def period_end(self, period_seconds: float) -> datetime:
        return self.period_start + timedelta(seconds=period_seconds)


def previous_spend(cost: dict | None, running: bool) -> PreviousSpend | None:
    """The previous status' cost block (camelCase) read back; None when it lacks what accrual needs."""
    cost = cost or {}
    start, updated = parse_rfc3339(cost.get("periodStart")), parse_rfc3339(cost.get("updatedAt"))
    spent, rate = cost.get("spent"), cost.get("hourlyRate")
    if start is None or updated is None or not isinstance(spent, (int, float)):
        return None
    return PreviousSpend(spent=max(float(spent), 0.0), period_start=start, updated_at=updated,
                         hourly_rate=max(float(rate or 0.0), 0.0), running=running)


def current_period_start(period_start: datetime, period_seconds: float, now: datetime) -> datetime:
    """The start of the period `now` falls in, periods following one another from `period_start`."""
    if now < period_start:
        return period_start
    periods = int((now - period_start).total_seconds() // period_seconds)
    return period_start + timedelta(seconds=periods * period_seconds)


def accrue(previous: PreviousSpend | None, period_seconds: float, now: datetime) -> PeriodSpend:
    """The spend of the current period at `now`."""
    if previous is None:
        return PeriodSpend(spent=0.0, period_start=now)
    start = current_period_start(previous.period_start, period_seconds, now)
    rate = previous.hourly_rate if previous.running else 0.0
    if start != previous.period_start:
        # A new period: only the part of the interval since it began counts, from 0.
        since = max(previous.updated_at, start)
        return PeriodSpend(spent=money(accrued(rate, (now - since).total_seconds())), period_start=start)
    elapsed = (now - previous.updated_at).total_seconds()
    return PeriodSpend(spent=money(previous.spent + accrued(rate, elapsed)), period_start=start)
