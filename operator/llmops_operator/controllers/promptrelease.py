"""PromptRelease controller: a content-hashed ConfigMap per served version plus the routing ConfigMap."""

from __future__ import annotations

from typing import Any

from llmops_operator.api.v1alpha1.promptrelease import PromptRelease
from llmops_operator.builders.prompts import build_prompt_configmaps
from llmops_operator.controllers.base import Context, Observation, Reconciler, Refs
from llmops_operator.k8s.resources import resource_for
from llmops_operator.status.promptrelease import projected_release_status, release_observation


class PromptReleaseReconciler(Reconciler):
    resource = PromptRelease
    watches = (resource_for("v1", "ConfigMap"),)

    def children(self, obj: PromptRelease, ctx: Context, refs: Refs) -> list[dict[str, Any]]:
        return build_prompt_configmaps(obj)

    def status(self, obj: PromptRelease, live: list[dict[str, Any]], facts: Any, ctx: Context,
               refs: Refs) -> Observation:
        return release_observation(obj, live)

    def projected_status(self, obj: PromptRelease, ctx: Context) -> dict[str, Any] | None:
        return projected_release_status(obj)
