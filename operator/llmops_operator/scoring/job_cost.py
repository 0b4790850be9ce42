"""What a Ray training job costs: head + workers, priced from the catalog (pure)."""

from __future__ import annotations

from datetime import datetime

from llmops_operator.api.v1alpha1.common import CostStatus
from llmops_operator.api.v1alpha1.training import JobSpecCommon
from llmops_operator.api.v1alpha1.units import gib, parse_duration, parse_quantity
from llmops_operator.core.pricing import PriceCatalog
from llmops_operator.scoring.cost import accrued, money, pod_hourly

ACCRUAL_RESOLUTION_SECONDS = 60
"""Accrued cost advances in whole minutes, so a running job's status is not rewritten on every pass."""


def hourly_rate(spec: JobSpecCommon, catalog: PriceCatalog) -> float:
    res = spec.resources
    head = pod_hourly(catalog, parse_quantity(res.head_cpu), gib(res.head_memory))
    worker = pod_hourly(catalog, parse_quantity(res.cpu), gib(res.memory), res.gpus_per_worker, res.gpu_type)
    return head + res.workers * worker


def running_seconds(start: datetime | None, end: datetime | None, now: datetime) -> float:
    if start is None:
        return 0.0
    seconds = ((end or now) - start).total_seconds()
    return max(0.0, seconds - seconds % ACCRUAL_RESOLUTION_SECONDS)


def job_cost(spec: JobSpecCommon, catalog: PriceCatalog, start: datetime | None, end: datetime | None,
             now: datetime) -> CostStatus:
    rate = hourly_rate(spec, catalog)
    return CostStatus(
        currency=catalog.currency,
        hourly_rate=money(rate),
        accrued=money(accrued(rate, running_seconds(start, end, now))),
        estimate=money(accrued(rate, parse_duration(spec.max_duration))),
        budget=spec.budget.limit if spec.budget else None,
    )
