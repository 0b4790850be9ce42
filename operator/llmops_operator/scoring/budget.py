"""Budgets: what an object has spent against spec.budget, and what the budget decides (pure).

The one home of the budget concept for every kind: its condition types, the spend of a job and of a
service's period, the decision the budget's action takes, and the conditions that report it.

Conditions (only with spec.budget; informational, Ready is decided by each kind's reducer):
- BudgetExceeded: True when the spend reached spec.budget.limit (a job's accrued cost, a service's spend in
  the current period).
- BudgetFitsEstimate: False when spec.budget.limit is below what the object is expected to cost (a job over
  spec.maxDuration, a service at its replica floor for a whole period): a warning.

What the action decides is computed from spec.budget and the measured spend, never from a condition a
previous pass reported:
- a job (`job_hold`): Suspend or Stop holds it once its accrued cost reached the limit; the RayJob builder
  renders the hold as the RayJob's `suspend`, and raising the limit lifts it;
- a service (`BudgetState.stopped`): Stop holds it while the current period's spend is at the limit; the
  KServe builder renders KServe's stop annotation, and a new period or a raised limit lifts it.

A service runs for ever, so its budget is per period: a rolling window of spec.budget.period that restarts at 0
when it ends. Each pass adds the hourly rate the service ran at since the previous pass (the previous status'
cost.hourlyRate, over the time since its cost.updatedAt), unless the previous pass found it not running (stopped
by its budget, or no KServe object yet because a reference was not ready). A clock that went backwards adds
nothing; a missing or unreadable previous status starts a new period at 0, so spend is never negative and never
counted twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from llmops_operator.api.v1alpha1.common import CostStatus
from llmops_operator.api.v1alpha1.inferenceservice import InferenceService
from llmops_operator.api.v1alpha1.training import BudgetSpec
from llmops_operator.api.v1alpha1.units import parse_duration
from llmops_operator.core import conditions as cond
from llmops_operator.core.conditions import parse_rfc3339
from llmops_operator.scoring.cost import accrued, money

BUDGET_EXCEEDED = "BudgetExceeded"
BUDGET_FITS = "BudgetFitsEstimate"
NOT_RUNNING_PHASES = frozenset({"Stopped", "Invalid"})
"""Service phases in which no component pods run (besides having no KServe object at all)."""
DEFAULT_PERIOD = "720h"
"""The period a service's spend is accounted over when it has no budget."""

JobHold = Literal["Suspend", "Stop"]


# ----- jobs ---------------------------------------------------------------------------------------

def recorded_spend(status: Any) -> float | None:
    """A job's measured spend so far: the accrued cost its status carries (None before the first measurement).

    A held job runs nothing, so its spend is the reading taken when it stopped; only the status keeps it."""
    cost = getattr(status, "cost", None)
    return None if cost is None else cost.accrued


def job_hold(budget: BudgetSpec | None, spent: float | None) -> JobHold | None:
    """Suspend or Stop once the spend reached the limit and the action acts on it; None otherwise."""
    if budget is None or budget.action == "Alert" or spent is None or spent < budget.limit:
        return None
    return budget.action


def job_budget_conditions(budget: BudgetSpec | None, cost: CostStatus) -> list[cond.Observed]:
    """BudgetFitsEstimate and BudgetExceeded of a job whose cost so far is `cost`."""
    if budget is None:
        return []
    if cost.estimate is not None and cost.estimate > budget.limit:
        fits = cond.false(BUDGET_FITS, "BudgetBelowEstimate",
                          f"spec.budget.limit {budget.limit} is below the estimate of {cost.estimate} "
                          f"{cost.currency} for spec.maxDuration: the job may hit its budget before it ends")
    else:
        fits = cond.true(BUDGET_FITS, "WithinEstimate")
    if cost.accrued >= budget.limit:
        exceeded = cond.true(BUDGET_EXCEEDED, "BudgetExceeded",
                             f"accrued {cost.accrued} {cost.currency} reached the budget of {budget.limit}")
    else:
        exceeded = cond.false(BUDGET_EXCEEDED, "WithinBudget")
    return [fits, exceeded]


# ----- services: spend per period -----------------------------------------------------------------

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


# ----- services: what the budget decides and reports ----------------------------------------------

@dataclass(frozen=True)
class BudgetState:
    """The current period's spend against spec.budget (limit None: no budget)."""

    spend: PeriodSpend
    period_seconds: float
    limit: float | None = None
    action: str | None = None

    @property
    def exceeded(self) -> bool:
        return self.limit is not None and self.spend.spent >= self.limit

    @property
    def stopped(self) -> bool:
        return self.exceeded and self.action == "Stop"


def budget_state(obj: InferenceService, now: datetime) -> BudgetState:
    """Spend of the period `now` falls in, accrued from the spend the object's last status measured."""
    now = now.replace(microsecond=0)  # status times are whole seconds: accrue from what the next pass reads back
    budget = obj.spec.budget
    period_seconds = parse_duration(budget.period if budget else DEFAULT_PERIOD)
    status = obj.status
    previous = None
    if status is not None and status.cost is not None:
        running = bool(status.kserve_service) and status.phase not in NOT_RUNNING_PHASES
        previous = previous_spend(status.cost.wire(), running)
    spend = accrue(previous, period_seconds, now)
    if budget is None:
        return BudgetState(spend=spend, period_seconds=period_seconds)
    return BudgetState(spend=spend, period_seconds=period_seconds, limit=budget.limit, action=budget.action)


def period_estimate(hourly_rate: float, state: BudgetState) -> float:
    """Cost of one whole period at the replica floor."""
    return money(hourly_rate * state.period_seconds / 3600.0)


def service_budget_conditions(state: BudgetState, hourly_rate: float, currency: str) -> list[cond.Observed]:
    """BudgetFitsEstimate and BudgetExceeded of a service in the state `state`."""
    if state.limit is None:
        return []
    spent, limit = state.spend.spent, state.limit
    estimate = period_estimate(hourly_rate, state)
    if estimate > limit:
        fits = cond.false(BUDGET_FITS, "BudgetBelowEstimate",
                          f"spec.budget.limit {limit} is below the {estimate} {currency} the service costs per "
                          f"period at its replica floor: it will reach its budget before the period ends")
    else:
        fits = cond.true(BUDGET_FITS, "WithinEstimate",
                         f"a period at the replica floor costs {estimate} {currency}, within spec.budget.limit {limit}")
    since = cond.now_rfc3339(state.spend.period_start)
    where = f"spent {spent} {currency} of the {limit} budget in the period since {since}"
    exceeded = (cond.true(BUDGET_EXCEEDED, "BudgetExceeded", f"{where} (spec.budget.action {state.action})")
                if state.exceeded else cond.false(BUDGET_EXCEEDED, "WithinBudget", where))
    return [fits, exceeded]


def stopped_ready(state: BudgetState, currency: str) -> cond.Observed:
    """Ready while spec.budget.action Stop holds the service."""
    start, end = state.spend.period_start, state.spend.period_end(state.period_seconds)
    return cond.false(cond.READY, "BudgetExceeded",
                      f"stopped by spec.budget.action Stop: spent {state.spend.spent} {currency} of the "
                      f"{state.limit} budget in the period since {cond.now_rfc3339(start)}; serving resumes "
                      f"when the next period starts at {cond.now_rfc3339(end)} or when spec.budget.limit is raised")
