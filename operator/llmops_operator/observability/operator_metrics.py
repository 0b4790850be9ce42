"""The operator's own Prometheus metrics: how reconciles go, and what every object's status says.

Loop metrics: reconciles by kind and outcome, their duration, and the passes in flight (started, including
those queued behind another pass of the same object). Object gauges mirror the status the loop just wrote,
one series per object (kind, namespace, name), so a dashboard or an alert reads cost, drift, safety and
Ready without listing the API; they are removed when the object is deleted.

Prometheus collectors are process-wide by nature: the operator uses `default_metrics()` (the default
registry that `llmops run --metrics-port` serves); tests give each Loop its own registry.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from typing import Any, Iterator

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

from llmops_operator.core.conditions import ready_of

OBJECT_LABELS = ("kind", "namespace", "name")

WRITTEN, UNCHANGED, INVALID, ERROR = "written", "unchanged", "invalid", "error"
"""Reconcile outcomes: status patched, nothing to write, spec rejected (Ready=False/InvalidSpec), pass raised."""

DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


@dataclass
class Pass:
    """What one reconcile pass reports back to its timer."""

    status: dict[str, Any] | None = None
    written: bool = False

    def outcome(self) -> str:
        if self.status is not None and _is_invalid(self.status):
            return INVALID
        return WRITTEN if self.written else UNCHANGED


def _is_invalid(status: dict[str, Any]) -> bool:
    ready = ready_of(status)
    return ready.get("reason") == "InvalidSpec"


def object_values(status: dict[str, Any]) -> dict[str, float | None]:
    """The per-object gauge values a status implies (pure); None: the block is absent, the series is removed."""
    cost, drift, safety = status.get("cost") or {}, status.get("drift") or {}, status.get("safety") or {}
    ready = ready_of(status)
    return {
        "ready": float(ready.get("status") == "True") if ready else None,
        "cost_accrued": cost.get("accrued"),
        "cost_hourly_rate": cost.get("hourlyRate"),
        "drift_score": drift.get("score"),
        "safety_score": safety.get("score") if safety.get("evaluated") else None,
    }


class OperatorMetrics:
    def __init__(self, registry: CollectorRegistry = REGISTRY):
        self.reconciles = Counter("llmops_reconciles", "Reconcile passes by kind and outcome "
                                  "(written, unchanged, invalid, error).", ("kind", "outcome"), registry=registry)
        self.duration = Histogram("llmops_reconcile_duration_seconds", "Duration of one reconcile pass.",
                                  ("kind",), buckets=DURATION_BUCKETS, registry=registry)
        self.in_flight = Gauge("llmops_reconciles_in_flight", "Reconcile passes started and not finished, "
                               "including those queued behind a pass of the same object.", ("kind",),
                               registry=registry)
        self.objects = {
            "ready": Gauge("llmops_ready", "1 when the object's Ready condition is True, else 0.",
                           OBJECT_LABELS, registry=registry),
            "cost_accrued": Gauge("llmops_cost_accrued", "status.cost.accrued, in status.cost.currency.",
                                  OBJECT_LABELS, registry=registry),
            "cost_hourly_rate": Gauge("llmops_cost_hourly_rate", "status.cost.hourlyRate, per hour.",
                                      OBJECT_LABELS, registry=registry),
            "drift_score": Gauge("llmops_drift_score", "status.drift.score (PSI, JS or embedding drift).",
                                 OBJECT_LABELS, registry=registry),
            "safety_score": Gauge("llmops_safety_score", "status.safety.score (0..1), once verdicts were evaluated.",
                                  OBJECT_LABELS, registry=registry),
        }

    @contextmanager
    def timed(self, kind: str) -> Iterator[Pass]:
        """Time a pass; count it by outcome (error when it raises); keep the in-flight gauge."""
        record = Pass()
        self.in_flight.labels(kind).inc()
        started = time.perf_counter()
        try:
            yield record
        except BaseException:
            self.reconciles.labels(kind, ERROR).inc()
            raise
        else:
            self.reconciles.labels(kind, record.outcome()).inc()
        finally:
            self.duration.labels(kind).observe(time.perf_counter() - started)
            self.in_flight.labels(kind).dec()

    def set_object(self, kind: str, namespace: str, name: str, status: dict[str, Any]) -> None:
        for key, value in object_values(status).items():
            gauge = self.objects[key]
            if value is None:
                _remove(gauge, kind, namespace, name)
            else:
                gauge.labels(kind, namespace, name).set(value)

    def forget_object(self, kind: str, namespace: str, name: str) -> None:
        for gauge in self.objects.values():
            _remove(gauge, kind, namespace, name)


def _remove(gauge: Gauge, *labels: str) -> None:
    try:
        gauge.remove(*labels)
    except KeyError:
        pass  # never set for this object


@cache
def default_metrics() -> OperatorMetrics:
    """The process' metrics on the default registry (created once: collectors cannot register twice)."""
    return OperatorMetrics(REGISTRY)

