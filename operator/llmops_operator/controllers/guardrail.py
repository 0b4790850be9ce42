"""Guardrail controller: compile the policy into a content-hashed ConfigMap; status says which one."""

from __future__ import annotations

from typing import Any

from llmops_operator.api.v1alpha1.guardrail import Guardrail
from llmops_operator.builders.guardrail_policy import build_policy_configmap
from llmops_operator.controllers.base import Context, Observation, Reconciler, Refs
from llmops_operator.k8s.resources import resource_for
from llmops_operator.status.guardrail import guardrail_observation, projected_guardrail_status


class GuardrailReconciler(Reconciler):
    resource = Guardrail
    watches = (resource_for("v1", "ConfigMap"),)

    def children(self, obj: Guardrail, ctx: Context, refs: Refs) -> list[dict[str, Any]]:
        return [build_policy_configmap(obj)]

    def status(self, obj: Guardrail, live: list[dict[str, Any]], facts: Any, ctx: Context,
               refs: Refs) -> Observation:
        return guardrail_observation(obj, live)

    def projected_status(self, obj: Guardrail, ctx: Context) -> dict[str, Any] | None:
        return projected_guardrail_status(obj)
