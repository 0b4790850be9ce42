"""One kopf event handler per watched llmops.dev kind, calling every listener of that kind in turn.

kopf runs each event handler as a handler of its own: its invocation, its bookkeeping and a log line, per event.
A Guardrail event had three (its own resync's, and those of the two kinds that may name a Guardrail): at 1,000 new
Guardrails, about three events each, 9,000 handler runs where 3,000 do the same work. Listeners still run one
after the other, and one that fails is logged without keeping the others from running, as separate event
handlers were.
"""

from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable

from llmops_operator.api.v1alpha1.common import GROUP, VERSION
from llmops_operator.controllers.kopf_lean import kopf

log = logging.getLogger("llmops.operator")
Listener = Callable[..., Awaitable[None]]
EVENTS_HANDLER_ID = "events"


class EventListeners:
    def __init__(self) -> None:
        self._by_plural: dict[str, list[tuple[str, Listener]]] = {}

    def add(self, plural: str, name: str, listener: Listener) -> None:
        self._by_plural.setdefault(plural, []).append((name, listener))

    def names(self, plural: str) -> list[str]:
        return [name for name, _ in self._by_plural.get(plural, [])]

    def register(self, registry: kopf.OperatorRegistry) -> None:
        for plural, listeners in self._by_plural.items():
            kopf.on.event(GROUP, VERSION, plural, registry=registry, id=EVENTS_HANDLER_ID)(fan_out(listeners))


def fan_out(listeners: list[tuple[str, Listener]]) -> Listener:
    async def on_event(**kwargs: Any) -> None:
        for name, listener in listeners:
            try:
                await listener(**kwargs)
            except Exception:  # one listener's bug must not cost the others their event
                meta = kwargs["body"].get("metadata", {})
                log.exception("event listener %s failed on %s/%s", name, meta.get("namespace"), meta.get("name"))

    return on_event
