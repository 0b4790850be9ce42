"""The ConfigMaps of a PromptRelease: one content-hashed ConfigMap per served version, and the routing (pure)."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from llmops_operator.api.v1alpha1.promptrelease import PromptRelease, PromptVersion
from llmops_operator.builders import labels
from llmops_operator.builders.naming import owned_name, short_hash

TEMPLATE_KEY = "template.txt"
PROMPT_KEY = "prompt.json"
ROUTING_KEY = "routing.json"
FORCE_HEADER = "x-llmops-prompt-version"
"""The header that makes the guardrail runtime serve one named version (the operator's evaluation sends it)."""
TOKEN_HEADER = "x-llmops-evaluation-token"
"""Proof that FORCE_HEADER comes from the operator: the runtime honours a forced version only when this header
carries the routing's evaluationToken, which the routing holds only while a candidate is evaluated."""


def prompt_document(version: PromptVersion) -> dict[str, Any]:
    """What the runtime needs to render and send one version, defaults made explicit."""
    parameters = version.parameters
    document: dict[str, Any] = {
        "version": version.name, "template": version.template,
        "parameters": {"temperature": parameters.temperature, "maxTokens": parameters.max_tokens},
    }
    if parameters.top_p is not None:
        document["parameters"]["topP"] = parameters.top_p
    if parameters.stop:
        document["parameters"]["stop"] = list(parameters.stop)
    if version.variables is not None:
        document["variables"] = list(version.variables)
    if version.messages is not None:
        document["messages"] = [{"role": m.role, "content": m.content} for m in version.messages]
    return document


def version_hash(version: PromptVersion) -> str:
    return short_hash(prompt_document(version))


def version_configmap_name(release: PromptRelease, version: str) -> str:
    return owned_name(release, version, version_hash(release.spec.version(version)))


def routing_configmap_name(release: PromptRelease) -> str:
    return owned_name(release, "routing")


Routes = list[tuple[str, int]]
"""(version, weight) of each version that serves: stable first, then the candidate if any."""


def served_versions(release: PromptRelease) -> Routes:
    """The split the spec states before any rollout decision: stable, then the canary at its (first) weight."""
    rollout = release.spec.rollout
    if rollout.canary is None:
        return [(rollout.stable, 100)]
    weight = rollout.canary.effective_steps()[0].weight
    return [(rollout.stable, 100 - weight), (rollout.canary.version, weight)]


def build_version_configmap(release: PromptRelease, version: str) -> dict[str, Any]:
    """An immutable ConfigMap named after the version's content: an edited template is a new ConfigMap."""
    spec = release.spec.version(version)
    digest = version_hash(spec)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": version_configmap_name(release, version),
            "namespace": release.namespace,
            "labels": {**labels.child_labels(release, "prompt-version"), labels.CONTENT_HASH: digest},
        },
        "immutable": True,
        "data": {TEMPLATE_KEY: spec.template,
                 PROMPT_KEY: json.dumps(prompt_document(spec), sort_keys=True, separators=(",", ":"))},
    }


def evaluation_token(release: PromptRelease, key: str) -> str | None:
    """The token that lets the operator force the candidate during its evaluation: an HMAC, under the operator's
    key, of the release's uid and the candidate's content. None offline (no uid) or without a candidate."""
    canary = release.spec.rollout.canary
    if canary is None or not release.metadata.uid:
        return None
    message = f"{release.metadata.uid}/{canary.version}/{version_hash(release.spec.version(canary.version))}"
    return hmac.new(key.encode(), message.encode(), hashlib.sha256).hexdigest()[:32]


def routing_document(release: PromptRelease, routes: Routes | None = None,
                     token: str | None = None) -> dict[str, Any]:
    rollout = release.spec.rollout
    routes = [{"version": version, "configMap": version_configmap_name(release, version), "weight": weight}
              for version, weight in (routes or served_versions(release))]
    document: dict[str, Any] = {"strategy": rollout.strategy, "routes": routes}
    if rollout.strategy == "sticky":
        document["stickyKey"] = rollout.sticky_key
    if token is not None:
        document["evaluationToken"] = token
    return document


def build_routing_configmap(release: PromptRelease, routes: Routes | None = None,
                            token: str | None = None) -> dict[str, Any]:
    """The traffic split; a stable name, so a weight change reaches mounted pods without a restart."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": routing_configmap_name(release),
            "namespace": release.namespace,
            "labels": labels.child_labels(release, "prompt-routing"),
        },
        "data": {ROUTING_KEY: json.dumps(routing_document(release, routes, token), sort_keys=True,
                                         separators=(",", ":"))},
    }


def build_prompt_configmaps(release: PromptRelease, routes: Routes | None = None,
                            token: str | None = None) -> list[dict[str, Any]]:
    """The served versions' ConfigMaps (stable, then candidate) and the routing ConfigMap last.

    `routes` is the rollout's decision (status/rollout.py); by default the split the spec states. `token`: the
    evaluation token, while the candidate is evaluated.
    """
    routes = routes or served_versions(release)
    return [*(build_version_configmap(release, v) for v, _ in routes),
            build_routing_configmap(release, routes, token)]
