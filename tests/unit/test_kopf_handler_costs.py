"""kopf's per-event work that the operator trims: the success line of each watch-event handler run, and the thread
hand-off of a plain-function index handler."""

from __future__ import annotations

import asyncio
import logging

from llmops_operator.controllers.kinds import all_reconcilers
from llmops_operator.controllers.operator import build_registry, quiet_watch_handlers, watch_event_handler_ids
from llmops_operator.core.settings import Settings


def registered_ids(kind_of_registry: str) -> set[str]:
    registry = build_registry(all_reconcilers(), Settings())
    return {str(h.id) for h in getattr(registry, kind_of_registry).get_all_handlers()}


def test_every_watch_event_handler_is_quiet_and_no_other_handler_is():
    watching = registered_ids("_watching")
    assert watch_event_handler_ids(all_reconcilers()) == watching
    assert {"events", "child-guardrail-configmaps"} <= watching
    assert not watching & registered_ids("_changing")


def test_quiet_handlers_lose_their_success_line_only(caplog):
    logger = logging.getLogger("test.kopf.objects")
    quiet_watch_handlers({"events", "child-guardrail-configmaps"}, logger)
    quiet_watch_handlers({"events", "child-guardrail-configmaps"}, logger)  # a second start replaces the first
    with caplog.at_level(logging.INFO, logger=logger.name):
        logger.info("Handler 'events' succeeded.")
        logger.info("Handler 'child-guardrail-configmaps' succeeded.")
        logger.info("Handler 'create' succeeded.")
        logger.info("Creation is processed: 1 succeeded; 0 failed.")
        logger.error("Handler 'events' failed with an exception. Will retry.")
    assert [r.getMessage() for r in caplog.records] == [
        "Handler 'create' succeeded.", "Creation is processed: 1 succeeded; 0 failed.",
        "Handler 'events' failed with an exception. Will retry."]
    assert len(logger.filters) == 1


def test_index_handlers_run_on_the_event_loop():
    """kopf runs a plain function in its thread pool; a coroutine it awaits in place."""
    registry = build_registry(all_reconcilers(), Settings())
    indexers = registry._indexing.get_all_handlers()
    assert indexers and all(asyncio.iscoroutinefunction(h.fn) for h in indexers)
