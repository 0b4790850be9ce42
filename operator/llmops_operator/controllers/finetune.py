"""FineTune reconciler (placeholder until its controller lands)."""

from __future__ import annotations

from typing import Any

from llmops_operator.api.v1alpha1.finetune import FineTune
from llmops_operator.controllers.base import Context, Observation, Reconciler, Refs
from llmops_operator.status import conditions as cond


class FineTuneReconciler(Reconciler):
    resource = FineTune

    def status(self, obj: FineTune, live: list[dict[str, Any]], facts: Any, ctx: Context, refs: Refs) -> Observation:
        return Observation(conditions=[cond.unknown(cond.READY, "NotImplemented")], phase="Pending")
