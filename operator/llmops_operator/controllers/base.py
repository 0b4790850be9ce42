"""The generic reconcile loop every kind shares; per-kind modules supply only pure pieces.

One pass: parse the body into the typed model (a bad spec becomes Ready=False/InvalidSpec, never a
crash loop) -> build the children (pure) -> apply them with owner references (server-side apply,
idempotent, only onto objects we control) -> observe outside systems (optional) -> reduce everything
to status (pure) -> write status once, and only if it changed.

A pass the API server stops (a 403 from admission or quota, a missing CRD, a 422, a child name held by
someone else) still writes status: `Stalled=True` and `Ready=False` with the reason and the server's
message (status/kstatus.py). It is then retried with exponential backoff, capped at BACKOFF_CAP seconds.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import Any, Callable, ClassVar

import aiohttp

from llmops_operator.api.v1alpha1.common import Resource
from llmops_operator.builders.crd_fields import Dropped
from llmops_operator.builders import labels
from llmops_operator.controllers import cleanup, events
from llmops_operator.controllers.child_cache import ChildCache
from llmops_operator.controllers.children import (
    ChildConflict, PassError, apply_child, classify, prune_children,
)
from llmops_operator.controllers.engine_schema import EngineSchemas
from llmops_operator.core import conditions as cond
from llmops_operator.core.contract import Context, InvalidSpec, Observation, Refs, invalid_observation, parse
from llmops_operator.core.settings import Settings
from llmops_operator.k8s.client import ApiClient, ApiError
from llmops_operator.k8s.resources import ApiResource, resource_of
from llmops_operator.observability import tracing
from llmops_operator.observability.operator_metrics import OperatorMetrics, default_metrics
from llmops_operator.status import kstatus
from llmops_operator.status.engine_fields import with_dropped

BACKOFF_FIRST, BACKOFF_CAP = 2.0, 300.0
"""Seconds before the first retry of a failed pass; each further failure doubles it, up to the cap."""


class RetryLater(Exception):
    """A pass failed and its status says why; run it again after `delay` seconds."""

    def __init__(self, failure: kstatus.PassFailure, delay: float):
        super().__init__(f"{failure.reason}: {failure.message} (retry in {delay:.0f}s)")
        self.failure = failure
        self.delay = delay


class NamespaceTerminating(Exception):
    """A child could not be created because the object's namespace is being deleted: nothing to report or retry,
    the object goes with its namespace. (Its children's deletion events arrive before its own.)"""


def backoff_delay(failures: int) -> float:
    """Seconds before retrying after `failures` consecutive failed passes (1, 2, ...)."""
    return min(BACKOFF_FIRST * 2 ** max(failures - 1, 0), BACKOFF_CAP)

log = logging.getLogger("llmops.loop")


class Reconciler:
    """Per-kind behaviour. Subclasses override the pure pieces; the loop lives in `Loop`."""

    resource: ClassVar[type[Resource]]
    watches: ClassVar[tuple[ApiResource, ...]] = ()
    """Child kinds whose changes re-reconcile their owner (for example RayJob status changes)."""
    referenced_kinds: ClassVar[tuple[str, ...]] = ()
    """llmops.dev kinds `references` may name; their changes re-reconcile the objects naming them."""
    has_finalizer: ClassVar[bool] = False
    """True where something outside Kubernetes must be cleaned on delete (see `finalize`)."""
    observes_first: ClassVar[bool] = False
    """True where what is measured decides the children (a canary's traffic split): the loop runs observe() before
    it builds the children (with no live children), then `decide`, and builds the children from that decision."""
    prunes_every_pass: ClassVar[bool] = False
    """True where a child may outlive the spec that asked for it (`in_use`): every pass prunes, so it goes once
    released instead of at the next spec change. Every pass but the first: an object with no status yet has had
    no pass that could have left a child behind (one that stopped after a write still writes why)."""
    requeue: Callable[[str, str], None] | None = None
    """Set by the loop: run a pass over (namespace, name) soon, for work that finishes outside a pass."""

    def check(self, obj: Resource, ctx: Context) -> None:
        """Validation that needs configuration (the price catalog, settings); raise InvalidSpec."""

    def references(self, obj: Resource) -> list[tuple[str, str]]:
        """Other llmops.dev objects (kind, name) this one reads, in its namespace (pure)."""
        return []

    def children(self, obj: Resource, ctx: Context, refs: Refs) -> list[dict[str, Any]] | None:
        """The child manifests, without owner references (pure; shared with `llmops render`).

        None: not decidable now (a referenced object is not Ready yet), so the children already there are kept as
        they are, neither updated nor pruned. [] means the object wants no children at all."""
        return []

    def projected_status(self, obj: Resource, ctx: Context) -> dict[str, Any] | None:
        """The status (camelCase) this object will report once Ready, for offline previews only.

        `llmops render` gives it to objects that reference this one, so a file set previews as the
        cluster will reconcile it after its dependencies finish. None: no projection.
        """
        return None

    async def in_use(self, obj: Resource, api: ApiClient) -> set[tuple[str, str, str]]:
        """Children (apiVersion, kind, name) the spec no longer asks for that something live still needs; prune
        keeps them."""
        return set()

    async def observe(self, obj: Resource, live: list[dict[str, Any]], ctx: Context, api: ApiClient) -> Any:
        """Facts from outside systems (Milvus, Feast, metrics) the status needs; None by default."""
        return None

    async def probe(self, obj: Resource, api: ApiClient) -> frozenset[str]:
        """Optional engine CRDs (`plural.group`) installed in the cluster that this object's children depend on,
        read before the children are built (`ctx.installed`). Nothing by default."""
        return frozenset()

    def decide(self, obj: Resource, facts: Any, ctx: Context) -> Any:
        """This pass's decision from the facts (pure, a typed value), made once per pass and handed to children(),
        status() and act() as `ctx.decision`. None by default."""
        return None

    def status(self, obj: Resource, live: list[dict[str, Any]], facts: Any, ctx: Context,
               refs: Refs) -> Observation:
        """Reduce the live children, references and facts to status (pure)."""
        raise NotImplementedError

    async def act(self, obj: Resource, observation: Observation, ctx: Context, api: ApiClient) -> Observation:
        """Closed loops: objects created because of the status just reduced (drift -> retrain); returns the
        observation with what they add. Nothing by default."""
        return observation

    async def finalize(self, obj: Resource, ctx: Context, api: ApiClient) -> cleanup.Cleanup:
        """Clean up outside Kubernetes before the object goes (only when has_finalizer); see controllers/cleanup."""
        return cleanup.DONE


def compose_status(previous: dict[str, Any] | None, observation: Observation, generation: int | None,
                   now: str) -> dict[str, Any]:
    """The full new status: observation fields, merged conditions, phase and observedGeneration."""
    previous = previous or {}
    status = dict(observation.fields)
    status["conditions"] = cond.merge(previous.get("conditions", []), observation.conditions, generation, now)
    status["phase"] = observation.phase
    status["observedGeneration"] = generation
    return status


def status_patch(previous: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any] | None:
    """A JSON merge patch (RFC 7386) turning `previous` into `new`; None when nothing changed.

    The server merges nested objects key by key, so the diff recurses: a key a nested block no longer has is sent
    as null, or the stored block would keep it beside the new values (lists are replaced whole)."""
    previous = previous or {}
    patch: dict[str, Any] = {k: None for k in previous if k not in new}
    for key, value in new.items():
        before = previous.get(key)
        if before == value:
            continue
        if isinstance(value, dict) and isinstance(before, dict):
            patch[key] = status_patch(before, value) or {}
        else:
            patch[key] = value
    return patch or None


class Loop:
    """Runs reconcile passes for one kind; one pass at a time per object."""

    def __init__(self, reconciler: Reconciler, api: ApiClient, settings: Settings,
                 metrics: OperatorMetrics | None = None, schemas: EngineSchemas | None = None):
        self.reconciler = reconciler
        self.api = api
        self.schemas = schemas or EngineSchemas(api)
        self.settings = settings
        self.metrics = metrics or default_metrics()
        self.resource = ApiResource(reconciler.resource.model_fields["api_version"].default,
                                    reconciler.resource.info.kind, reconciler.resource.info.plural)
        self._locks: dict[str, asyncio.Lock] = {}
        self._failures: dict[str, int] = {}
        self._cleanup_api_failures: dict[str, int] = {}
        self._requeued: set[asyncio.Task[None]] = set()
        self._sighted: set[str] = set()
        self._unpruned: set[str] = set()
        reconciler.requeue = self.requeue
        self.child_cache = ChildCache()

    def context(self) -> Context:
        return Context(settings=self.settings, catalog=self.settings.catalog)

    def first_sight(self, uid: str) -> bool:
        """True the first time an object's watch event asks, in this process (until the object is forgotten)."""
        if uid in self._sighted:
            return False
        self._sighted.add(uid)
        return True

    def _lock(self, uid: str) -> asyncio.Lock:
        return self._locks.setdefault(uid, asyncio.Lock())

    async def reconcile(self, body: dict[str, Any], prune: bool = False) -> dict[str, Any] | None:
        """One level-based pass over `body`; returns the status patch written, if any.

        prune: also delete the children the spec no longer asks for (after a spec change), before status is
        written, so a status that observed a generation means its children are that generation's.

        Traced and timed; the status it settles on feeds the object's gauges, and a phase or Ready change
        posts an Event. A pass stopped by the API server writes why (kstatus) and raises RetryLater."""
        meta = body["metadata"]
        kind, namespace, name = self.resource.kind, meta["namespace"], meta["name"]
        with tracing.reconcile_span(kind, namespace, name, meta.get("generation")), \
                self.metrics.timed(kind) as record:
            async with self._lock(meta["uid"]):
                prune = prune or meta["uid"] in self._unpruned
                ctx = self.context()
                failure = None
                try:
                    observation = kstatus.with_progress(await self._observe(body, ctx, prune))
                except NamespaceTerminating:  # an expected refusal: the object goes with its namespace
                    log.debug("%s %s/%s: not reconciled, its namespace is being deleted", kind, namespace, name)
                    self._count(meta["uid"], None)
                    return None
                except PassError as err:
                    failure = err.failure
                except (ApiError, ChildConflict) as err:
                    failure = classify(err)
                if failure is not None:
                    observation = kstatus.failed_pass(body.get("status"), failure)
                new = compose_status(body.get("status"), observation, meta.get("generation"),
                                     cond.now_rfc3339(ctx.now))
                patch = status_patch(body.get("status"), new)
                if patch:
                    try:
                        await self.api.patch_status(self.resource, namespace, name, patch)
                    except ApiError as err:  # nowhere to report it but the log: back off all the same
                        self._count(meta["uid"], classify(err))
                    await events.announce(self.api, body, new, ctx.now)
                record.status, record.written = new, bool(patch)
                self.metrics.set_object(kind, namespace, name, new)
                if prune and failure is not None:  # its retry, from the resync, prunes too
                    self._unpruned.add(meta["uid"])
                elif failure is None:
                    self._unpruned.discard(meta["uid"])
                self._count(meta["uid"], failure)
            return patch

    def _count(self, uid: str, failure: kstatus.PassFailure | None) -> None:
        """Consecutive failed passes per object: reset by a good pass, else RetryLater with a growing delay."""
        if failure is None:
            self._failures.pop(uid, None)
            return
        self._failures[uid] = self._failures.get(uid, 0) + 1
        raise RetryLater(failure, backoff_delay(self._failures[uid]))

    async def _observe(self, body: dict[str, Any], ctx: Context, prune: bool = False) -> Observation:
        try:
            obj = parse(self.reconciler.resource, body)
            self.reconciler.check(obj, ctx)
        except InvalidSpec as err:
            return invalid_observation(str(err))
        refs = await self.fetch_references(obj)
        reconciler = self.reconciler
        facts = await reconciler.observe(obj, [], ctx, self.api) if reconciler.observes_first else None
        ctx = dataclasses.replace(ctx, decision=reconciler.decide(obj, facts, ctx),
                                  installed=await reconciler.probe(obj, self.api))
        children = reconciler.children(obj, ctx, refs)
        live, dropped = await self._apply(body, children)
        if (prune or (reconciler.prunes_every_pass and body.get("status"))) and children is not None:
            try:
                await self._prune(body, obj, children)
            except ApiError as err:
                raise PassError(classify(err)) from err
        if not reconciler.observes_first:
            facts = await reconciler.observe(obj, live, ctx, self.api)
        observation = with_dropped(reconciler.status(obj, live, facts, ctx, refs), dropped)
        return await reconciler.act(obj, observation, ctx, self.api)

    def requeue(self, namespace: str, name: str) -> None:
        """Run a pass over the object soon, outside any handler (a worker finished); the resync timer stays the
        safety net if this one fails."""
        task = asyncio.get_running_loop().create_task(self._reconcile_named(namespace, name))
        self._requeued.add(task)
        task.add_done_callback(self._requeued.discard)

    async def _reconcile_named(self, namespace: str, name: str) -> None:
        try:
            body = await self.api.get_or_none(self.resource, namespace, name)
            if body is not None and not body["metadata"].get("deletionTimestamp"):
                await self.reconcile(body)
        except (ApiError, RetryLater, aiohttp.ClientError, asyncio.TimeoutError) as err:
            log.warning("%s %s/%s: requeued pass failed, the resync retries: %s: %s", self.resource.kind,
                        namespace, name, type(err).__name__, err)

    async def drain(self) -> None:
        """Wait for the requeued passes under way (before the client closes)."""
        while self._requeued:
            await asyncio.gather(*self._requeued, return_exceptions=True)

    async def _apply(self, body: dict[str, Any], children: list[dict[str, Any]] | None
                     ) -> tuple[list[dict[str, Any]], list[Dropped]]:
        """Apply each child in order, an engine's pruned to the fields its installed CRD declares; the live objects
        and what was left out. None (not decidable now) touches nothing. An observe-only child that does not exist
        is not in the result."""
        live, dropped = [], []
        for child in children or []:
            try:
                applied, lost = await self.schemas.write(
                    child, lambda fitted: apply_child(self.api, fitted, body, self.child_cache))
            except ApiError as err:
                if cleanup.namespace_terminating(err):
                    raise NamespaceTerminating(str(err)) from err
                raise PassError(classify(err, child)) from err
            except ChildConflict as err:
                raise PassError(classify(err, child)) from err
            if applied is not None:
                live.append(applied)
            if lost is not None:
                dropped.append(lost)
        return live, dropped

    async def fetch_references(self, obj: Resource) -> Refs:
        from llmops_operator.api.v1alpha1 import BY_KIND

        refs: Refs = {}
        for kind, name in self.reconciler.references(obj):
            target = BY_KIND[kind]
            where = ApiResource(target.model_fields["api_version"].default, kind, target.info.plural)
            refs[(kind, name)] = await self.api.get_or_none(where, obj.namespace, name)
        return refs

    def names(self, body: dict[str, Any], target: tuple[str, str]) -> bool:
        """Whether the object `body` names `target` (kind, name); an unparsable one names nothing."""
        return target in self.references_of(body)

    def references_of(self, body: dict[str, Any]) -> list[tuple[str, str]]:
        """The (kind, name) pairs the object `body` names; an unparsable one names nothing."""
        try:
            obj = parse(self.reconciler.resource, body)
        except InvalidSpec:
            return []
        return self.reconciler.references(obj)

    async def prune(self, body: dict[str, Any]) -> list[str]:
        """Delete children this object no longer wants (after a spec change renamed or dropped one).

        Only what the spec decidedly no longer asks for: while a referenced object is not Ready, children() is
        None and nothing is pruned (the live service keeps serving); and only children this object controls."""
        try:
            obj = parse(self.reconciler.resource, body)
        except InvalidSpec:
            return []
        desired = self.reconciler.children(obj, self.context(), await self.fetch_references(obj))
        return [] if desired is None else await self._prune(body, obj, desired)

    async def _prune(self, body: dict[str, Any], obj: Resource, desired: list[dict[str, Any]]) -> list[str]:
        wanted = {(c["apiVersion"], c["kind"], c["metadata"]["name"]) for c in desired}
        kinds = {resource_of(c) for c in desired} | set(self.reconciler.watches)
        return await prune_children(self.api, body, kinds, labels.children_selector(obj), wanted,
                                    lambda: self.reconciler.in_use(obj, self.api))

    async def finalize(self, body: dict[str, Any]) -> float | None:
        """One finalizer pass over an object being deleted: None when it may go, else seconds until the next pass."""
        delay = await cleanup.finalize_pass(self.reconciler, self.api, self.resource, self.context(), body,
                                            self._cleanup_api_failures)
        if delay is None:
            self.forget(body["metadata"]["uid"])
        return delay

    def forget(self, uid: str) -> None:
        self._locks.pop(uid, None)
        self._failures.pop(uid, None)
        self._cleanup_api_failures.pop(uid, None)
        self._sighted.discard(uid)
        self._unpruned.discard(uid)
        self.child_cache.forget(uid)

    def deleted(self, body: dict[str, Any]) -> None:
        """The object is gone: drop its lock and its gauges."""
        meta = body["metadata"]
        self.forget(meta["uid"])
        self.metrics.forget_object(self.resource.kind, meta["namespace"], meta["name"])
