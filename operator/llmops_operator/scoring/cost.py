"""Cost: an OpenCost-style allocation of resources x hours x price, from a price catalog.

Prices come from core.pricing's catalog; everything here is pure.
"""

from __future__ import annotations

from llmops_operator.core.pricing import GpuPrice, PriceCatalog


class UnknownGpuType(ValueError):
    pass


def pod_hourly(catalog: PriceCatalog, cpu: float, memory_gib: float, gpus: int = 0,
               gpu_type: str | None = None) -> float:
    """Price of one pod for one hour."""
    rate = cpu * catalog.cpu_core_hour + memory_gib * catalog.memory_gi_b_hour
    if gpus:
        rate += gpus * gpu_price(catalog, gpu_type).hourly
    return rate


def gpu_price(catalog: PriceCatalog, gpu_type: str | None) -> GpuPrice:
    if gpu_type not in catalog.gpus:
        known = ", ".join(sorted(catalog.gpus)) or "none"
        raise UnknownGpuType(f"unknown GPU type {gpu_type!r}; the price catalog knows: {known}")
    return catalog.gpus[gpu_type]


def accrued(hourly_rate: float, seconds: float) -> float:
    return hourly_rate * max(seconds, 0.0) / 3600.0


def per_1k_tokens(hourly_rate: float, seconds: float, tokens: int) -> float | None:
    """Serving cost per 1,000 tokens: the cost of the window divided by the tokens it served."""
    if tokens <= 0:
        return None
    return accrued(hourly_rate, seconds) / tokens * 1000.0


def money(value: float) -> float:
    """Round an amount for status: sub-cent precision without float noise."""
    return round(value, 4)
