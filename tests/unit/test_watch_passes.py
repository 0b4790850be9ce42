"""Which watch events of our own kinds run a pass, and whether it prunes (the work kopf's create, update and
resume handlers did, without their annotation PATCH)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from llmops_operator.controllers.base import Loop, RetryLater
from llmops_operator.controllers.children import PassError
from llmops_operator.controllers.guardrail import GuardrailReconciler
from llmops_operator.controllers.operator import pass_needed
from llmops_operator.core.contract import invalid_observation
from llmops_operator.core.settings import Settings
from llmops_operator.status import kstatus


def guardrail(generation: int = 1, observed: int | None = None, uid: str = "u1", **meta: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"apiVersion": "llmops.dev/v1alpha1", "kind": "Guardrail",
                            "metadata": {"name": "g", "namespace": "ns", "uid": uid, "generation": generation, **meta},
                            "spec": {"checks": [{"name": "pii", "type": "piiRedaction"}]}}
    if observed is not None:
        body["status"] = {"observedGeneration": observed}
    return body


def loop() -> Loop:
    return Loop(GuardrailReconciler(), api=None, settings=Settings())  # type: ignore[arg-type]


def test_a_new_object_has_one_pass_and_its_own_status_write_none():
    events = loop()
    assert pass_needed(events, guardrail(), "ADDED") is False
    assert pass_needed(events, guardrail(), "MODIFIED") is None  # another event before its status
    assert pass_needed(events, guardrail(observed=1), "MODIFIED") is None  # the status the pass wrote


def test_every_object_has_a_pass_when_the_operator_starts():
    """The initial listing (no event type) of an object reconciled by an earlier operator process: resume."""
    assert pass_needed(loop(), guardrail(observed=1), None) is False


def test_a_spec_change_has_a_pass_that_prunes_and_a_metadata_change_none():
    events = loop()
    assert pass_needed(events, guardrail(observed=1), None) is False
    assert pass_needed(events, guardrail(observed=1, labels={"team": "a"}), "MODIFIED") is None
    assert pass_needed(events, guardrail(generation=2, observed=1), "MODIFIED") is True
    assert pass_needed(events, guardrail(generation=2, observed=1), None) is True  # changed while it was down


def test_deleted_and_deleting_objects_have_no_pass():
    events = loop()
    assert pass_needed(events, guardrail(), "DELETED") is None
    assert pass_needed(events, guardrail(deletionTimestamp="2026-01-01T00:00:00Z"), "MODIFIED") is None


def test_a_deleted_object_created_again_under_its_uid_is_new_again():
    events = loop()
    assert pass_needed(events, guardrail(), "ADDED") is False
    events.deleted(guardrail())
    assert pass_needed(events, guardrail(), "ADDED") is False


class Api:
    async def patch_status(self, *_: Any) -> None:
        return None

    async def request(self, *_: Any, **__: Any) -> dict[str, Any]:
        return {}


def test_the_retry_of_a_failed_pass_that_pruned_prunes_too(monkeypatch):
    """A spec change's pass that fails is retried by the resync, which asks for no prune: the loop remembers,
    until a pass succeeds."""
    events, pruned, outcomes = loop(), [], [False, True, True]
    events.api = Api()  # type: ignore[assignment]

    async def observe(body: dict[str, Any], ctx: Any, prune: bool = False) -> Any:
        pruned.append(prune)
        if not outcomes.pop(0):
            raise PassError(kstatus.PassFailure("Forbidden", "exceeded quota"))
        return invalid_observation("a stand-in for a pass that finished")

    monkeypatch.setattr(events, "_observe", observe)
    body = guardrail(generation=2, observed=1)
    with pytest.raises(RetryLater):
        asyncio.run(events.reconcile(body, prune=True))
    asyncio.run(events.reconcile(body))  # the resync's retry
    asyncio.run(events.reconcile(body))  # the next resync
    assert pruned == [True, True, False]


def test_only_kinds_without_a_finalizer_pass_on_watch_events():
    """kopf puts a finalizer on before its create handler runs; a pass from a watch event could make something
    outside Kubernetes before the finalizer that cleans it up is there."""
    from llmops_operator.controllers.event_fanout import EventListeners
    from llmops_operator.controllers.kinds import all_reconcilers
    from llmops_operator.controllers.kopf_lean import kopf
    from llmops_operator.controllers.operator import register_kind

    for reconciler in all_reconcilers():
        registry, listeners = kopf.OperatorRegistry(), EventListeners()
        register_kind(registry, reconciler, listeners)
        changing = {str(h.id) for h in registry._changing.get_all_handlers()}
        passes = "pass" in listeners.names(reconciler.resource.info.plural)
        if reconciler.has_finalizer:
            assert not passes and {"create", "update/spec", "resume", "finalize"} <= changing, reconciler
        else:
            assert passes and not changing, reconciler
