"""Status of a PromptRelease, reduced from its version and routing ConfigMaps (pure).

Conditions (each reported on every pass):
- Released: set by the PromptRelease controller. True once the ConfigMap of every served version
  (stable, and canary when set) and the routing ConfigMap exist; False naming the first missing one.
  Counts toward Ready.
- Ready: True when Released is True: consumers (InferenceService) may mount the versions named in
  status.stable and status.canary.

Phase: Canary while a canary version gets traffic (weight above 0), Stable otherwise, Pending before
the ConfigMaps exist.
"""

from __future__ import annotations

from typing import Any

from llmops_operator.api.v1alpha1.promptrelease import PromptRelease, ReleasedVersion
from llmops_operator.builders.prompts import routing_configmap_name, served_versions, version_configmap_name
from llmops_operator.controllers.base import Observation
from llmops_operator.status import conditions as cond

RELEASED = "Released"


def released_versions(release: PromptRelease) -> list[ReleasedVersion]:
    return [ReleasedVersion(version=v, config_map=version_configmap_name(release, v), weight=w)
            for v, w in served_versions(release)]


def released(release: PromptRelease, live: list[dict[str, Any]]) -> cond.Observed:
    present = {c["metadata"]["name"] for c in live if c}
    wanted = [v.config_map for v in released_versions(release)] + [routing_configmap_name(release)]
    missing = [name for name in wanted if name not in present]
    if missing:
        return cond.false(RELEASED, "ConfigMapMissing", f"ConfigMap {missing[0]!r} does not exist yet")
    return cond.true(RELEASED, "Released", _summary(release))


def _summary(release: PromptRelease) -> str:
    rollout = release.spec.rollout
    if rollout.canary is None:
        return f"version {rollout.stable!r} serves all traffic"
    return (f"version {rollout.stable!r} serves {100 - rollout.canary.weight}%, "
            f"canary {rollout.canary.version!r} {rollout.canary.weight}%")


def release_fields(release: PromptRelease) -> dict[str, Any]:
    versions = released_versions(release)
    fields: dict[str, Any] = {"stable": versions[0].wire(), "routingConfigMap": routing_configmap_name(release)}
    if len(versions) > 1:
        fields["canary"] = versions[1].wire()
    return fields


def phase_of(release: PromptRelease, ready: cond.Observed) -> str:
    if ready.status != "True":
        return "Pending"
    canary = release.spec.rollout.canary
    return "Canary" if canary is not None and canary.weight > 0 else "Stable"


def release_observation(release: PromptRelease, live: list[dict[str, Any]]) -> Observation:
    done = released(release, live)
    ready = cond.aggregate_ready([done], [RELEASED], "Released", done.message)
    fields = release_fields(release) if done.status == "True" else {}
    return Observation(conditions=[done, ready], phase=phase_of(release, ready), fields=fields)


def projected_release_status(release: PromptRelease) -> dict[str, Any]:
    """The status a released PromptRelease reports, for offline previews (`llmops render`)."""
    ready = cond.true(cond.READY, "Released")
    return {"phase": phase_of(release, ready),
            "conditions": [{"type": cond.READY, "status": "True", "reason": "Released"}],
            **release_fields(release)}
