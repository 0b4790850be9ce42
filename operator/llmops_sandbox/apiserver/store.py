"""Objects, the global resourceVersion counter and the watch fan-out.

Every write replaces the stored dict (stored objects are never mutated in place), so events can share them.
"""

from __future__ import annotations

import asyncio
import collections
from dataclasses import dataclass, field
from typing import Any, Iterator

from .errors import ApiError

Key = tuple[str, str]  # (group, plural)


@dataclass
class Event:
    rv: int
    key: Key
    type: str  # ADDED | MODIFIED | DELETED
    obj: dict[str, Any]

    @property
    def namespace(self) -> str | None:
        return self.obj.get("metadata", {}).get("namespace")


@dataclass
class Watcher:
    key: Key
    namespace: str | None
    queue: asyncio.Queue = field(default_factory=asyncio.Queue)

    def wants(self, event: Event) -> bool:
        return event.key == self.key and (self.namespace is None or event.namespace == self.namespace)


class Store:
    def __init__(self, history: int = 1000) -> None:
        self.objects: dict[Key, dict[tuple[str | None, str], dict[str, Any]]] = {}
        self.rv = 0
        self.history: collections.deque[Event] = collections.deque()
        self.history_size = history
        self.compacted = 0  # the newest resourceVersion no longer in history
        self.watchers: list[Watcher] = []

    # -- reads -----------------------------------------------------------------------------------
    def get(self, key: Key, namespace: str | None, name: str) -> dict[str, Any] | None:
        return self.objects.get(key, {}).get((namespace, name))

    def list(self, key: Key, namespace: str | None = None) -> list[dict[str, Any]]:
        objs = self.objects.get(key, {})
        items = [o for (ns, _), o in objs.items() if namespace is None or ns == namespace]
        items.sort(key=lambda o: (o["metadata"].get("namespace") or "", o["metadata"]["name"]))
        return items

    def all_in_namespace(self, namespace: str) -> Iterator[tuple[Key, dict[str, Any]]]:
        for key, objs in self.objects.items():
            for (ns, _), obj in list(objs.items()):
                if ns == namespace:
                    yield key, obj

    def everything(self) -> Iterator[tuple[Key, dict[str, Any]]]:
        for key, objs in self.objects.items():
            for obj in list(objs.values()):
                yield key, obj

    # -- writes ----------------------------------------------------------------------------------
    def next_rv(self) -> int:
        self.rv += 1
        return self.rv

    def put(self, key: Key, obj: dict[str, Any], event_type: str) -> dict[str, Any]:
        rv = self.next_rv()
        obj["metadata"]["resourceVersion"] = str(rv)
        meta = obj["metadata"]
        self.objects.setdefault(key, {})[(meta.get("namespace"), meta["name"])] = obj
        self._emit(Event(rv, key, event_type, obj))
        return obj

    def remove(self, key: Key, namespace: str | None, name: str) -> dict[str, Any] | None:
        obj = self.objects.get(key, {}).pop((namespace, name), None)
        if obj is None:
            return None
        rv = self.next_rv()
        gone = dict(obj)
        gone["metadata"] = dict(obj["metadata"], resourceVersion=str(rv))
        self._emit(Event(rv, key, "DELETED", gone))
        return gone

    def drop_key(self, key: Key) -> list[dict[str, Any]]:
        """Remove every object of a resource (its CRD went away)."""
        removed = []
        for ns, name in list(self.objects.get(key, {})):
            gone = self.remove(key, ns, name)
            if gone:
                removed.append(gone)
        self.objects.pop(key, None)
        return removed

    def _emit(self, event: Event) -> None:
        self.history.append(event)
        while len(self.history) > self.history_size:
            self.compacted = self.history.popleft().rv
        for watcher in self.watchers:
            if watcher.wants(event):
                watcher.queue.put_nowait(event)

    # -- watches ---------------------------------------------------------------------------------
    def subscribe(self, key: Key, namespace: str | None, since: int | None) -> tuple[Watcher, list[Event]]:
        """A live watcher plus the backlog after `since` (None: the current objects as ADDED).

        Raises 410 Gone when `since` is older than the retained history.
        """
        watcher = Watcher(key, namespace)
        if since is None:
            backlog = [Event(int(o["metadata"]["resourceVersion"]), key, "ADDED", o)
                       for o in self.list(key, namespace)]
        else:
            if since < self.compacted:
                raise ApiError(410, f"too old resource version: {since} ({self.compacted + 1})", "Expired")
            backlog = [e for e in self.history if e.rv > since and watcher.wants(e)]
        self.watchers.append(watcher)
        return watcher, backlog

    def unsubscribe(self, watcher: Watcher) -> None:
        if watcher in self.watchers:
            self.watchers.remove(watcher)
