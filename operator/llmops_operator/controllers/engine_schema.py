"""The fields each installed engine CRD declares, so the operator writes only those.

An engine's CRD grows between releases: KubeRay v1.6 added RayJob `spec.preRunningDeadlineSeconds`, and a
cluster with KubeRay v1.5 refuses a server-side apply that carries it ("field not declared in schema"). The
operator reads the installed CRD's schema at start-up, prunes every engine child to the declared fields before
writing it (builders/crd_fields), and reports what it left out as the owner's `EngineFieldsDropped` condition.
A write the server still refuses for an undeclared field (the CRD changed since it was read) reads the schema
again and retries once; a schema is also read again after REREAD_SECONDS, so an upgraded engine is noticed.

Reading a CRD needs `get` on `customresourcedefinitions` (the chart grants it for the engine CRDs by name).
Where it cannot be read (no permission, a CRD too large), children are written as rendered, as before.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Awaitable, Callable

from llmops_operator.builders.crd_fields import Dropped, field_tree, prune, version_schema
from llmops_operator.controllers.children import ENGINES, SCHEMA_TOO_OLD
from llmops_operator.k8s.capped import BodyTooLarge
from llmops_operator.k8s.client import ApiClient, ApiError, NotFound
from llmops_operator.k8s.resources import resource_for

log = logging.getLogger("llmops.engines")
CRD = resource_for("apiextensions.k8s.io/v1", "CustomResourceDefinition")
REREAD_SECONDS = 300.0
CRD_MAX_BYTES = 32 * 1024 * 1024
"""KServe's and KubeRay's CRDs are a few megabytes each; a larger answer is not read."""
REPORTED_MAX = 1024
"""Distinct drops logged once each; the memory of them is bounded (past it, each is logged once more)."""


def schema_refused(err: ApiError) -> bool:
    """The server refused a write for a field the installed CRD does not declare (a 422, or under server-side apply
    the 500 "failed to create typed patch object")."""
    return SCHEMA_TOO_OLD in err.message


class EngineSchemas:
    """Declared-field trees of the engine CRDs, read lazily (or all at start-up with `load`) and shared by the
    loops of every kind."""

    def __init__(self, api: ApiClient, clock: Callable[[], float] = time.monotonic):
        self.api = api
        self.clock = clock
        self._trees: dict[str, tuple[dict[str, Any] | None, float]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._reported: set[Dropped] = set()

    async def load(self) -> None:
        """Read every engine CRD the operator writes (at start-up)."""
        for api_version in sorted({api_version for api_version, _ in ENGINES}):
            for kind in sorted(k for v, k in ENGINES if v == api_version):
                await self._tree(api_version, kind)

    def forget(self, child: dict[str, Any]) -> None:
        """Read the child's CRD again before the next write (the server says it changed)."""
        engine = ENGINES.get((child["apiVersion"], child["kind"]))
        if engine:
            self._trees.pop(engine[0], None)

    async def fit(self, child: dict[str, Any]) -> tuple[dict[str, Any], Dropped | None]:
        """The child pruned to what its installed CRD declares, and what was left out (None: nothing)."""
        engine = ENGINES.get((child["apiVersion"], child["kind"]))
        if engine is None:
            return child, None
        tree = await self._tree(child["apiVersion"], child["kind"])
        if tree is None:
            return child, None
        pruned, removed = prune(child, tree)
        if not removed:
            return child, None
        dropped = Dropped(child["kind"], child["metadata"]["name"], engine[0], tuple(removed), engine[1])
        if dropped not in self._reported:
            if len(self._reported) >= REPORTED_MAX:
                self._reported.clear()
            self._reported.add(dropped)
            log.warning("%s", dropped.message())
        return pruned, dropped

    async def write(self, child: dict[str, Any], apply: Callable[[dict[str, Any]], Awaitable[Any]]
                    ) -> tuple[Any, Dropped | None]:
        """`apply(fitted child)`; when the server refuses an undeclared field or the CRD is missing, the schema is
        read again (now for a refusal, at the next pass for a missing CRD) and a refusal retried once."""
        fitted, dropped = await self.fit(child)
        try:
            return await apply(fitted), dropped
        except NotFound as err:
            if err.missing_type:
                self.forget(child)
            raise
        except ApiError as err:
            if not schema_refused(err) or (child["apiVersion"], child["kind"]) not in ENGINES:
                raise
        self.forget(child)
        fitted, dropped = await self.fit(child)
        return await apply(fitted), dropped

    async def _tree(self, api_version: str, kind: str) -> dict[str, Any] | None:
        crd, _ = ENGINES[(api_version, kind)]
        cached = self._trees.get(crd)
        if cached is not None and self.clock() - cached[1] < REREAD_SECONDS:
            return cached[0]
        async with self._locks.setdefault(crd, asyncio.Lock()):
            cached = self._trees.get(crd)
            if cached is None or self.clock() - cached[1] >= REREAD_SECONDS:
                cached = (await self._read(crd, api_version.rpartition("/")[2]), self.clock())
                self._trees[crd] = cached
            return cached[0]

    async def _read(self, crd: str, version: str) -> dict[str, Any] | None:
        try:
            body = await self.api.get(CRD, None, crd, max_bytes=CRD_MAX_BYTES)
        except NotFound:
            return None  # not installed: the write fails and says so (EngineMissing)
        except (ApiError, BodyTooLarge) as err:
            log.warning("cannot read the %s CRD, so its children are written as rendered: %s", crd, err)
            return None
        schema = version_schema(body, version)
        return field_tree(schema) if schema is not None else None
