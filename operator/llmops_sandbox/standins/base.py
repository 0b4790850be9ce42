"""A stand-in controller: list, then watch from that version, and hand every object to `handle`."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from llmops_operator.k8s.client import ApiClient, ApiError
from llmops_operator.k8s.resources import ApiResource

log = logging.getLogger("llmops.sandbox")


class StandIn:
    """Level-based like a real controller: every event re-examines the whole object."""

    resource: ApiResource

    def __init__(self, api: ApiClient):
        self.api = api

    async def handle(self, obj: dict[str, Any]) -> None:
        raise NotImplementedError

    async def forget(self, obj: dict[str, Any]) -> None:
        """The object was deleted."""

    async def close(self) -> None:
        """Stop whatever the stand-in started (processes, servers); nothing is left behind."""

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self._list_and_watch(stop)
            except (ApiError, OSError) as err:
                log.warning("%s stand-in: %s; re-listing", self.resource.kind, err)
                await asyncio.sleep(0.5)

    async def _list_and_watch(self, stop: asyncio.Event) -> None:
        items, version = await self.api.list_with_version(self.resource)
        for obj in items:
            await self._safely(self.handle, obj)
        async for event in self.api.watch(self.resource, resource_version=version, timeout_seconds=60):
            if stop.is_set():
                return
            if event["type"] == "ERROR":
                return  # expired version: re-list
            if event["type"] == "DELETED":
                await self._safely(self.forget, event["object"])
            elif event["type"] in ("ADDED", "MODIFIED"):
                await self._safely(self.handle, event["object"])

    async def _safely(self, fn: Any, obj: dict[str, Any]) -> None:
        try:
            await fn(obj)
        except ApiError as err:
            log.warning("%s stand-in: %s/%s: %s", self.resource.kind, obj["metadata"].get("namespace"),
                        obj["metadata"]["name"], err)
