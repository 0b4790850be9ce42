"""Event listeners of a kind share one kopf event handler; each still runs, even after another failed."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter

from llmops_operator.controllers.event_fanout import EventListeners, fan_out
from llmops_operator.controllers.kinds import all_reconcilers
from llmops_operator.controllers.kopf_lean import kopf
from llmops_operator.controllers.operator import build_registry, register_kind
from llmops_operator.core.settings import Settings


def test_each_watched_kind_has_one_event_handler_serving_all_its_listeners():
    registry = build_registry(all_reconcilers(), Settings())
    handlers = registry._watching.get_all_handlers()
    per_plural = Counter(h.selector.any_name or h.selector.plural for h in handlers if h.selector.group == "llmops.dev")
    assert len(per_plural) == len(all_reconcilers()) and set(per_plural.values()) == {1}, per_plural


def test_the_guardrail_handler_feeds_its_resync_and_the_kinds_that_name_a_guardrail():
    listeners = EventListeners()
    for reconciler in all_reconcilers():
        register_kind(kopf.OperatorRegistry(), reconciler, listeners)
    assert sorted(listeners.names("guardrails")) == ["pass", "ref-finetune-guardrail",
                                                     "ref-inferenceservice-guardrail", "seen"]


def test_a_failing_listener_is_logged_and_the_next_one_still_runs(caplog):
    ran = []

    async def broken(**_):
        raise RuntimeError("boom")

    async def fine(body, **_):
        ran.append(body["metadata"]["name"])

    handler = fan_out([("broken", broken), ("fine", fine)])
    with caplog.at_level(logging.ERROR, logger="llmops.operator"):
        asyncio.run(handler(body={"metadata": {"namespace": "ml", "name": "g"}}, type="ADDED"))
    assert ran == ["g"]
    assert "event listener broken failed on ml/g" in caplog.text
