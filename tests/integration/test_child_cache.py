"""A pass that would write a child exactly as it already is writes nothing; any change made since is still fixed.

The index stands in for the kopf index the operator's child watch keeps: here it is filled from the child as the
API serves it, which is what the watch delivers."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from apiservers import REAL_WHEN_BUILT, apiserver_kind, kube, namespace, new_namespace, operator  # noqa: F401
from kube_helpers import example

from llmops_operator.api.v1alpha1 import Guardrail
from llmops_operator.controllers.base import Loop, RetryLater
from llmops_operator.controllers.child_cache import seen_by_watch
from llmops_operator.controllers.kinds import reconciler_for
from llmops_operator.core.settings import Settings
from llmops_operator.k8s import kubeconfig
from llmops_operator.k8s.client import ApiClient
from llmops_operator.k8s.resources import resource_for

APISERVERS = REAL_WHEN_BUILT  # the real apiserver when `make kube` built it, else the emulator
CONFIGMAP = resource_for("v1", "ConfigMap")
GUARDRAILS = resource_for("llmops.dev/v1alpha1", "Guardrail")
POLICY = "llmops.dev/guardrail=policy"
"""The Guardrail's ConfigMaps (a real cluster publishes its CA bundle as a ConfigMap in every namespace)."""


class RecordingClient(ApiClient):
    """The real client, noting each request's method and path."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.sent: list[tuple[str, str]] = []

    async def request(self, method: str, path: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
        self.sent.append((method, path))
        return await super().request(method, path, *args, **kwargs)


def guardrail() -> dict[str, Any]:
    """The example Guardrail without its evaluation dataset: its only ConfigMap request is then its policy."""
    body = example("Guardrail") | {"metadata": {"name": "policy"}}
    body["spec"] = {k: v for k, v in body["spec"].items() if k != "evaluation"}
    return body


@pytest.fixture
def namespace(new_namespace) -> str:
    return new_namespace("cache")  # no operator reconciles there: these tests run the passes


def passes(kube, namespace: str, steps: list[Any]) -> list[list[tuple[str, str]]]:
    """Run each step (a function of the loop and the watch index) then one pass; the requests of each pass."""
    async def main() -> list[list[tuple[str, str]]]:
        index: dict[tuple[str, str], list[Any]] = {}
        async with RecordingClient(kubeconfig.load()) as api:
            loop = Loop(reconciler_for(Guardrail), api, Settings())
            loop.child_cache.watch("v1", "ConfigMap", index)
            sent = []
            for step in steps:
                step(index)
                api.sent.clear()
                try:
                    await loop.reconcile(kube.get(GUARDRAILS, namespace, "policy"))
                except RetryLater:
                    pass
                sent.append([s for s in api.sent if is_child_request(*s)])
            return sent
    return asyncio.run(main())


def is_child_request(method: str, path: str) -> bool:
    """A request about the child itself (a read, a write, its creation), not a listing of ConfigMaps."""
    return "/configmaps/" in path or (method == "POST" and path.endswith("/configmaps"))


def watched(kube, namespace: str):
    """The index as the child watch would hold it now."""
    def fill(index: dict[tuple[str, str], list[Any]]) -> None:
        index.clear()
        for child in kube.list(CONFIGMAP, namespace, POLICY):
            for key, seen in seen_by_watch(child).items():
                index[key] = [seen]
    return fill


def test_an_unchanged_child_is_not_written_again_and_a_changed_one_is(kube, namespace):
    kube.apply(guardrail(), namespace)

    def relabel(index: dict[tuple[str, str], list[Any]]) -> None:
        (child,) = kube.list(CONFIGMAP, namespace, POLICY)
        kube.patch(CONFIGMAP, namespace, child["metadata"]["name"], {"metadata": {"labels": {"extra": "x"}}})
        watched(kube, namespace)(index)

    first, unchanged, changed = passes(kube, namespace, [lambda index: None, watched(kube, namespace), relabel])
    assert [m for m, _ in first] == ["POST"], "a new immutable child is created in one request, neither read first " \
                                              "nor applied after"
    assert unchanged == [], "a child as the last apply left it is neither read nor written"
    assert [m for m, _ in changed] == ["PATCH"], "a child someone changed is written again, without a GET"


def test_a_foreign_object_the_watch_shows_is_still_a_conflict(kube, namespace):
    kube.apply(guardrail(), namespace)

    def replace_with_foreign(index: dict[tuple[str, str], list[Any]]) -> None:
        (child,) = kube.list(CONFIGMAP, namespace, POLICY)
        name = child["metadata"]["name"]
        kube.delete(CONFIGMAP, namespace, name)
        kube.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels":
                    child["metadata"]["labels"]}, "data": {"mine": "yes"}}, namespace)
        watched(kube, namespace)(index)

    _, _, foreign = passes(kube, namespace, [lambda index: None, watched(kube, namespace), replace_with_foreign])
    assert [m for m, _ in foreign] == ["GET"], "the foreign object was written"
    (held,) = kube.list(CONFIGMAP, namespace, POLICY)
    assert held["data"] == {"mine": "yes"} and not held["metadata"].get("ownerReferences")
    ready = next(c for c in kube.get(GUARDRAILS, namespace, "policy")["status"]["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == "ChildConflict"


def test_a_new_guardrail_costs_three_requests_and_a_resync_with_nothing_to_prune_one_listing(kube, namespace):
    """The first pass creates the policy, writes status and posts the Event: with no status yet no earlier pass can
    have left a child to prune. A later pass lists the children to prune, and asks which policies a live service
    still mounts (a LIST of every KServe service in the namespace) only when there is one to delete."""
    kube.apply(guardrail(), namespace)

    async def main() -> list[list[tuple[str, str]]]:
        async with RecordingClient(kubeconfig.load()) as api:
            loop = Loop(reconciler_for(Guardrail), api, Settings())
            index: dict[tuple[str, str], list[Any]] = {}
            loop.child_cache.watch("v1", "ConfigMap", index)
            sent = []
            for step in (lambda index: None, watched(kube, namespace)):
                step(index)
                api.sent.clear()
                await loop.reconcile(kube.get(GUARDRAILS, namespace, "policy"))
                sent.append([(method, path.rsplit("/", 1)[-1]) for method, path in api.sent])
            return sent

    first, resync = asyncio.run(main())
    assert [(m, p) for m, p in first if p != "status"] == [("POST", "configmaps"), ("POST", "events")]
    assert [m for m, p in first if p == "status"] == ["PATCH"]
    assert resync == [("GET", "configmaps")], "a pass with nothing to prune lists nothing else"
