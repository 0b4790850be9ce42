"""The safety-net resync: each object's pass runs again `interval` seconds after its last one, once it has been quiet
for half of that, so what no watch reports (metrics, Milvus, Feast, elapsed time and cost) still reaches its status.

One scheduler per kind, fed by that kind's own watch events. kopf's per-object timers did the same, but a timer
makes kopf put a finalizer on every object (to stop the timer before the object goes): one more PATCH and one
more event per object, and a task each. A failed pass is tried again after the delay it asked for.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

log = logging.getLogger("llmops.resync")

Pass = Callable[[dict[str, Any]], Awaitable[float | None]]
"""One pass over a body: None when it succeeded, else seconds until it should be tried again."""


@dataclass
class Tracked:
    body: dict[str, Any]
    changed: float
    """When its watch last reported it (monotonic seconds)."""
    due: float
    """When its next pass is due, if it has been quiet long enough by then."""
    retry_at: float | None = None
    """When a failed pass is to run again, however recently the object changed."""


class Resync:
    def __init__(self, interval: float, run_pass: Pass, clock: Callable[[], float] = time.monotonic):
        self.interval = interval
        self.idle = interval / 2
        self.tick = min(1.0, interval / 10)
        self.run_pass = run_pass
        self.clock = clock
        self._objects: dict[str, Tracked] = {}
        self._running: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    def seen(self, body: dict[str, Any], deleted: bool = False) -> None:
        """The watch reported `body` (created, changed, listed or, with deleted, gone)."""
        uid = body["metadata"]["uid"]
        if deleted:
            self._objects.pop(uid, None)
            return
        now = self.clock()
        tracked = self._objects.get(uid)
        self._objects[uid] = Tracked(without_managed_fields(body), now, tracked.due if tracked else now,
                                     tracked.retry_at if tracked else None)

    def passed(self, uid: str) -> None:
        """A pass over the object succeeded outside the resync (its watch event ran one): the next resync is a whole
        interval away. Without this, each new object had a second, redundant pass half an interval after its first,
        while a burst of new objects still waited for theirs."""
        tracked = self._objects.get(uid)
        if tracked is not None:
            tracked.due = max(tracked.due, self.clock() + self.interval)
            tracked.retry_at = None

    def retry(self, uid: str, delay: float) -> None:
        """A pass over the object failed outside the resync: run it again in `delay` seconds."""
        tracked = self._objects.get(uid)
        if tracked is not None:
            tracked.retry_at = self.clock() + delay

    def due(self) -> list[str]:
        """The objects whose pass is due now and not already running."""
        now = self.clock()
        return [uid for uid, t in self._objects.items() if uid not in self._running
                and (max(t.due, t.changed + self.idle) <= now or (t.retry_at is not None and t.retry_at <= now))]

    async def run(self) -> None:
        """Start the due passes, forever (cancel to stop; passes in flight are cancelled with it)."""
        try:
            while True:
                for uid in self.due():
                    self._running.add(uid)
                    task = asyncio.create_task(self._one(uid, self._objects[uid].body))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
                await asyncio.sleep(self.tick)
        finally:
            for task in list(self._tasks):
                task.cancel()

    async def _one(self, uid: str, body: dict[str, Any]) -> None:
        delay: float | None = None
        try:
            delay = await self.run_pass(body)
        except Exception:  # a bug in one pass must not stop the others' resync
            log.exception("resync of %s/%s failed", body["metadata"].get("namespace"), body["metadata"]["name"])
        finally:
            self._running.discard(uid)
        tracked = self._objects.get(uid)
        if tracked is not None:
            tracked.due = self.clock() + (self.interval if delay is None else delay)
            tracked.retry_at = None if delay is None else tracked.due


def without_managed_fields(body: dict[str, Any]) -> dict[str, Any]:
    """The body without metadata.managedFields, which no pass reads: kept for every object between passes, the
    server's field-ownership records are the larger part of a small object's memory."""
    meta = body.get("metadata") or {}
    if "managedFields" not in meta:
        return body
    return {**body, "metadata": {key: value for key, value in meta.items() if key != "managedFields"}}
