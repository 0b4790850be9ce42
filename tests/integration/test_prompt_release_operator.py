"""The real operator walks a PromptRelease canary to promotion, then obeys rollbackTo, against the real apiserver when it is built
(the emulator otherwise)."""

from __future__ import annotations

import json

import pytest

from apiservers import REAL_WHEN_BUILT, apiserver_kind, kube, namespace, new_namespace, operator  # noqa: F401
from kube_helpers import eventually

from llmops_operator.k8s.resources import ApiResource, resource_for

APISERVERS = REAL_WHEN_BUILT  # the real apiserver when `make kube` built it, else the emulator
pytestmark = [pytest.mark.integration]

PRELS = ApiResource("llmops.dev/v1alpha1", "PromptRelease", "promptreleases")
CONFIGMAP = resource_for("v1", "ConfigMap")
EVENT = resource_for("v1", "Event")


def release(steps: list[dict]) -> dict:
    return {"apiVersion": "llmops.dev/v1alpha1", "kind": "PromptRelease", "metadata": {"name": "chat"},
            "spec": {"versions": [{"name": "v1", "template": "Answer: {{ q }}"},
                                  {"name": "v2", "template": "Briefly: {{ q }}"}],
                     "rollout": {"stable": "v1", "canary": {"version": "v2", "steps": steps}}}}


def routes(kube, namespace: str) -> list[tuple[str, int]]:
    data = (kube.get(CONFIGMAP, namespace, "chat-prel-routing") or {}).get("data") or {}
    document = json.loads(data.get("routing.json") or '{"routes": []}')
    return [(r["version"], r["weight"]) for r in document["routes"]]


def state(kube, namespace: str) -> str | None:
    return ((kube.get(PRELS, namespace, "chat") or {}).get("status", {}).get("rollout") or {}).get("state")


def rollout_events(kube, namespace: str) -> list[str]:
    """The rollout's own Events on the release (the generic phase and Ready transition Events are left out)."""
    return [e["reason"] for e in kube.list(EVENT, namespace) if e["involvedObject"]["name"] == "chat"
            and not e["message"].startswith(("phase ", "Ready "))]


def test_a_canary_is_promoted_then_rolled_back_on_request(kube, operator, namespace):
    kube.apply(release([{"weight": 10}, {"weight": 60}]), namespace)
    eventually(lambda: state(kube, namespace) == "Promoted", timeout=60, what="promoted")
    eventually(lambda: routes(kube, namespace) == [("v2", 100)], what="routing follows the promotion")
    status = kube.get(PRELS, namespace, "chat")["status"]
    assert status["stable"]["version"] == "v2" and "canary" not in status
    assert [h["event"] for h in status["history"]] == ["Released", "Promoted"]
    assert rollout_events(kube, namespace) == ["Promoted"]

    body = release([{"weight": 10}, {"weight": 60}])
    body["spec"]["rollbackTo"] = "v1"
    kube.apply(body, namespace)
    eventually(lambda: routes(kube, namespace) == [("v1", 100)], timeout=30, what="rolled back to v1")
    # The pass applies the routing before it writes the status that records it: wait for that write.
    eventually(lambda: state(kube, namespace) == "RolledBack", timeout=30, what="status reports the rollback")
    status = kube.get(PRELS, namespace, "chat")["status"]
    assert (status["phase"], status["rollout"]["state"]) == ("RolledBack", "RolledBack")
    assert sorted(rollout_events(kube, namespace)) == ["Promoted", "RollbackRequested"]
