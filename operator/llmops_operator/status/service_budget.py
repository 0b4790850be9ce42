"""An InferenceService's budget: the current period's spend, whether it crossed the limit, what that does (pure).

Conditions (only with spec.budget; informational, Ready is decided in status/inferenceservice.py):
- BudgetExceeded: True when the period's spend reached spec.budget.limit. With action Alert nothing else
  changes (an Event says so); with action Stop the KServe InferenceService is rendered with KServe's stop
  annotation, the phase reads Stopped and Ready is False with reason BudgetExceeded.
- BudgetFitsEstimate: False when spec.budget.limit is below the hourly rate at the replica floor x the period,
  so a service that stays up will cross its budget before the period ends (a warning).

The stop lifts by itself: a new period starts at 0, and a raised limit is no longer reached.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from llmops_operator.api.v1alpha1.inferenceservice import InferenceService
from llmops_operator.api.v1alpha1.units import parse_duration
from llmops_operator.scoring.cost import money
from llmops_operator.scoring.service_budget import PeriodSpend, accrue, previous_spend
from llmops_operator.core import conditions as cond

BUDGET_EXCEEDED = "BudgetExceeded"
BUDGET_FITS = "BudgetFitsEstimate"
NOT_RUNNING_PHASES = frozenset({"Stopped", "Invalid"})
"""Phases in which no component pods run (besides having no KServe object at all)."""
DEFAULT_PERIOD = "720h"
"""The period spend is accounted over when the service has no budget."""


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
    """Spend of the period `now` falls in, accrued from the object's last status (obj.status)."""
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


def _stamp(when: datetime) -> str:
    return cond.now_rfc3339(when)


def budget_conditions(state: BudgetState, hourly_rate: float, currency: str) -> list[cond.Observed]:
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
    where = f"spent {spent} {currency} of the {limit} budget in the period since {_stamp(state.spend.period_start)}"
    exceeded = (cond.true(BUDGET_EXCEEDED, "BudgetExceeded", f"{where} (spec.budget.action {state.action})")
                if state.exceeded else cond.false(BUDGET_EXCEEDED, "WithinBudget", where))
    return [fits, exceeded]


def stopped_ready(state: BudgetState, currency: str) -> cond.Observed:
    """Ready while spec.budget.action Stop holds the service."""
    return cond.false(cond.READY, "BudgetExceeded",
                      f"stopped by spec.budget.action Stop: spent {state.spend.spent} {currency} of the "
                      f"{state.limit} budget in the period since {_stamp(state.spend.period_start)}; serving resumes "
                      f"when the next period starts at {_stamp(state.spend.period_end(state.period_seconds))} "
                      f"or when spec.budget.limit is raised")
