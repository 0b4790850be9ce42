"""VectorIndex reconciler (placeholder until its controller lands)."""

from __future__ import annotations

from typing import Any

from llmops_operator.api.v1alpha1.vectorindex import VectorIndex
from llmops_operator.controllers.base import Context, Observation, Reconciler, Refs
from llmops_operator.status import conditions as cond


class VectorIndexReconciler(Reconciler):
    resource = VectorIndex

    def status(self, obj: VectorIndex, live: list[dict[str, Any]], facts: Any, ctx: Context, refs: Refs) -> Observation:
        return Observation(conditions=[cond.unknown(cond.READY, "NotImplemented")], phase="Pending")
