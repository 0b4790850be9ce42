"""kopf wiring: one registry with every kind's handlers, and the operator's start-up settings."""

from __future__ import annotations

import asyncio
import functools
import logging
from datetime import datetime, timedelta, timezone
from typing import Any, Awaitable, Callable, Iterable

import aiohttp
from llmops_operator.controllers.kopf_lean import kopf

from llmops_operator.api.v1alpha1.common import GROUP, VERSION
from llmops_operator.builders import labels
from llmops_operator.controllers.child_cache import Seen, seen_by_watch
from llmops_operator.controllers.event_fanout import EVENTS_HANDLER_ID, EventListeners
from llmops_operator.controllers.resync import Resync
from llmops_operator.controllers.base import BACKOFF_FIRST, Loop, Reconciler, RetryLater
from llmops_operator.controllers.engine_schema import EngineSchemas
from llmops_operator.k8s import kubeconfig
from llmops_operator.k8s.client import ApiClient, ApiError
from llmops_operator.core.settings import Settings

log = logging.getLogger("llmops.operator")
TOKEN_RELOGIN = timedelta(minutes=5)
"""kopf logs in again this often when the token comes from a file that rotates (and on any 401)."""


def configure(settings: kopf.OperatorSettings) -> None:
    """kopf's own state lives under llmops.dev, never in status (status is ours)."""
    settings.persistence.finalizer = f"{GROUP}/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration")
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 270
    settings.watching.client_timeout = 300
    settings.networking.request_timeout = 60
    # A pass writes status itself, just before kopf patches its annotations: when the watch lags more than
    # kopf's default 5 s behind (a busy API server), kopf took that status event for a creation not yet handled
    # and ran the whole pass again. Waiting longer for kopf's own version costs nothing when the watch is prompt.
    settings.persistence.consistency_timeout = 30


class QuietWatchHandlers(logging.Filter):
    """Drops kopf's "Handler 'id' succeeded." line for the watch-event handlers named: they run on every event of
    every watched object (four lines per new Guardrail, two thirds of the log at 1,000 objects), and say only that
    a watch event arrived. Their failures are still logged, and so is every create, update and resume handler."""

    def __init__(self, handler_ids: Iterable[str]) -> None:
        super().__init__()
        self.quiet = frozenset(f"Handler {handler_id!r} succeeded." for handler_id in handler_ids)

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.levelno == logging.INFO and record.msg in self.quiet)


def quiet_watch_handlers(handler_ids: Iterable[str], logger: logging.Logger | None = None) -> QuietWatchHandlers:
    """Install the filter on kopf's per-object logger, replacing one an earlier start installed."""
    logger = logger or logging.getLogger("kopf.objects")
    for old in [f for f in logger.filters if isinstance(f, QuietWatchHandlers)]:
        logger.removeFilter(old)
    quiet = QuietWatchHandlers(handler_ids)
    logger.addFilter(quiet)
    return quiet


def watch_only_our_children(settings: kopf.OperatorSettings, reconcilers: Iterable[Reconciler]) -> None:
    """Child kinds (ConfigMaps, Jobs, ...) are watched with a server-side label selector: kopf decodes every
    watched object on the event loop, and an unfiltered ConfigMap watch would make each tenant's ConfigMap,
    however large and whatever it is for, cost the loop. The child handlers only act on our labels anyway."""
    children = {(child.api_version.rpartition("/")[0], child.plural) for r in reconcilers for child in r.watches}

    def is_child_kind(resource: kopf.Resource) -> bool:
        return (resource.group, resource.plural) in children

    settings.watching.label_selectors[is_child_kind] = f"{labels.MANAGED_BY}={labels.OPERATOR}"


def _temporary(err: ApiError) -> kopf.TemporaryError:
    """An API error outside a pass's status write-up (the status write itself): retried soon, kopf logs it."""
    return kopf.TemporaryError(str(err), delay=BACKOFF_FIRST)


def register_kind(registry: kopf.OperatorRegistry, reconciler: Reconciler,
                  listeners: EventListeners) -> Callable[..., Awaitable[float | None]]:
    """New objects, spec changes, objects there at start-up (`pass_needed`; kopf's handlers for kinds with a
    finalizer), child and reference events, all funnelled into one level-based pass; returns the pass the kind's resync runs (controllers/resync). Event
    listeners go to `listeners` (one kopf handler per kind)."""
    plural = reconciler.resource.info.plural
    kind = reconciler.resource.info.kind

    def loop_of(memo: Any) -> Loop:
        return memo.loops[kind]

    async def reconcile(body: kopf.Body, memo: Any, prune: bool = False, **kwargs: Any) -> None:
        if body.get("metadata", {}).get("deletionTimestamp"):
            return
        loop = loop_of(memo)
        _attach_child_indexes(loop, kwargs)
        try:
            await loop.reconcile(dict(body), prune=prune)
            memo.resyncs[kind].passed(body["metadata"]["uid"])
        except RetryLater as err:
            raise kopf.TemporaryError(str(err), delay=err.delay) from err
        except ApiError as err:
            raise _temporary(err) from err

    async def on_event(body: kopf.Body, memo: Any, type: str | None, **_: Any) -> None:
        memo.resyncs[kind].seen(dict(body), deleted=type == "DELETED")
        if type == "DELETED":
            loop_of(memo).deleted(dict(body))

    listeners.add(plural, "seen", on_event)
    if reconciler.has_finalizer:  # kopf puts the finalizer on before its create handler runs, never after a pass
        _register_changing_handlers(registry, plural, reconcile)
    else:
        listeners.add(plural, "pass", _pass_on_watch_events(kind, reconcile))

    if reconciler.has_finalizer:
        async def finalize(body: kopf.Body, memo: Any, **_: Any) -> None:
            delay = await loop_of(memo).finalize(dict(body))
            if delay is not None:
                raise kopf.TemporaryError("cleanup not finished (see the CleanupFailed condition if it failed)",
                                          delay=delay)

        kopf.on.delete(GROUP, VERSION, plural, registry=registry, id="finalize")(finalize)

    for child in reconciler.watches:
        _register_child_watch(registry, child, reconciler, reconcile)
    _register_reference_watches(registry, reconciler, reconcile, listeners)

    async def resync_pass(body: dict[str, Any], memo: Any) -> float | None:
        try:
            await reconcile(body, memo)
        except kopf.TemporaryError as err:
            return err.delay
        return None

    return resync_pass


def _register_changing_handlers(registry: kopf.OperatorRegistry, plural: str, reconcile: Any) -> None:
    """kopf's create, update and resume handlers, for kinds with a finalizer: a pass of theirs may make something
    outside Kubernetes, which only the finalizer's cleanup removes."""
    async def on_spec_change(body: kopf.Body, memo: Any, **kwargs: Any) -> None:
        await reconcile(body, memo, prune=True, **kwargs)

    kopf.on.resume(GROUP, VERSION, plural, registry=registry, id="resume")(reconcile)
    kopf.on.create(GROUP, VERSION, plural, registry=registry, id="create")(reconcile)
    kopf.on.update(GROUP, VERSION, plural, field="spec", registry=registry, id="update")(on_spec_change)


def _pass_on_watch_events(kind: str, reconcile: Any) -> Callable[..., Awaitable[None]]:
    """The listener running a pass where `pass_needed` says; a failed one is retried by the kind's resync after
    the delay it asked for."""
    async def on_watch_event(body: kopf.Body, memo: Any, type: str | None, **kwargs: Any) -> None:
        prune = pass_needed(memo.loops[kind], body, type)
        if prune is None:
            return
        try:
            await reconcile(body, memo, prune=prune, **kwargs)
        except kopf.TemporaryError as err:
            meta = body["metadata"]
            log.warning("%s %s/%s: pass failed, tried again in %.0fs: %s", kind, meta.get("namespace"),
                        meta.get("name"), err.delay, err)
            memo.resyncs[kind].retry(meta["uid"], err.delay)

    return on_watch_event


def pass_needed(loop: Loop, body: kopf.Body, type: str | None) -> bool | None:
    """Whether a watch event calls for a pass (None: no), and whether that pass prunes.

    A pass runs on an object's first event in this process (it was created, or was there when the operator
    started) and on each spec change, seen as metadata.generation past status.observedGeneration; a change after
    an earlier pass prunes. kopf's create, update and resume handlers decided the same from an annotation of the
    last handled spec, which cost a PATCH and two more watch events per new object, and a copy and diff of the
    body on every event."""
    meta = body.get("metadata", {})
    if type == "DELETED" or meta.get("deletionTimestamp"):
        return None
    observed = (body.get("status") or {}).get("observedGeneration")
    spec_changed = observed is not None and observed != meta.get("generation")
    if not spec_changed and not loop.first_sight(meta["uid"]):
        return None
    return spec_changed


def _register_child_watch(registry: kopf.OperatorRegistry, child: Any, reconciler: Reconciler,
                          reconcile: Any) -> None:
    owner_label = f"{GROUP}/{reconciler.resource.info.singular}"
    group, _, version = child.api_version.rpartition("/")

    async def on_child_event(body: kopf.Body, memo: Any, type: str | None, **_: Any) -> None:
        owner_name = body.get("metadata", {}).get("labels", {}).get(owner_label)
        # None is the initial listing and ADDED our own create: the pass that created the child already
        # computed status with it. Changes made by others (a Job's status, a report, a deletion) are what count.
        if not owner_name or type in (None, "ADDED"):
            return
        loop: Loop = memo.loops[reconciler.resource.info.kind]
        owner = await loop.api.get_or_none(loop.resource, body["metadata"]["namespace"], owner_name)
        if owner is not None:
            await reconcile(owner, memo)

    selector = {owner_label: kopf.PRESENT, labels.MANAGED_BY: labels.OPERATOR}
    kopf.on.event(group=group, version=version, plural=child.plural, registry=registry,
                  id=_child_event_id(reconciler, child), labels=selector)(on_child_event)
    kopf.index(group=group, version=version, plural=child.plural, registry=registry,
               id=_children_index_id(reconciler, child), labels=selector)(seen_by_watch_handler)


def _attach_child_indexes(loop: Loop, kwargs: dict[str, Any]) -> None:
    """Point the loop's child cache at the kopf indexes of its child watches (handlers receive them as kwargs)."""
    for child in loop.reconciler.watches:
        if (index := kwargs.get(_children_index_id(loop.reconciler, child))) is not None:
            loop.child_cache.watch(child.api_version, child.kind, index)


def _child_event_id(reconciler: Reconciler, child: Any) -> str:
    return f"child-{reconciler.resource.info.singular}-{child.plural}"


def watch_event_handler_ids(reconcilers: Iterable[Reconciler]) -> set[str]:
    """The kopf ids of the handlers every watch event runs: each kind's listeners, each child watch's handler."""
    return {EVENTS_HANDLER_ID} | {_child_event_id(r, child) for r in reconcilers for child in r.watches}


def _children_index_id(reconciler: Reconciler, child: Any) -> str:
    return f"children_{reconciler.resource.info.singular}_{child.plural}"


async def seen_by_watch_handler(body: kopf.Body, **_: Any) -> dict[tuple[str, str], Seen]:
    """kopf index of one owner kind's labelled children of one kind (see controllers/child_cache). A coroutine
    because kopf runs a plain function in its thread pool, a thread hand-off per watch event."""
    return seen_by_watch(body)


def _register_reference_watches(registry: kopf.OperatorRegistry, reconciler: Reconciler, reconcile: Any,
                                listeners: EventListeners) -> None:
    """When a referenced object changes (a TrainingJob succeeds), reconcile the objects that name it.

    Who names whom is kept in a kopf index fed by this kind's own watch, so an event of a referenced object costs
    one GET per object naming it, and none when nothing does (a LIST of every referrer per event did not scale)."""
    from llmops_operator.api.v1alpha1 import BY_KIND

    kind = reconciler.resource.info.kind
    if not reconciler.referenced_kinds:
        return
    index_id = f"referrers_{reconciler.resource.info.singular}"

    async def referrers(body: kopf.Body, memo: Any, **_: Any) -> dict[tuple[str, str, str], str]:
        meta = body.get("metadata", {})
        loop: Loop = memo.loops[kind]
        return {(meta.get("namespace"), target, name): meta.get("name")
                for target, name in loop.references_of(dict(body))}

    kopf.index(GROUP, VERSION, reconciler.resource.info.plural, registry=registry, id=index_id)(referrers)

    for target in reconciler.referenced_kinds:
        async def on_referenced_event(body: kopf.Body, memo: Any, type: str | None, target: str = target,
                                      **kwargs: Any) -> None:
            if type is None:
                return
            loop: Loop = memo.loops[kind]
            namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
            for referrer_name in sorted(set(kwargs[index_id].get((namespace, target, name), ()))):
                referrer = await loop.api.get_or_none(loop.resource, namespace, referrer_name)
                if referrer is not None and loop.names(referrer, (target, name)):
                    await reconcile(referrer, memo)

        listeners.add(BY_KIND[target].info.plural, f"ref-{reconciler.resource.info.singular}-{target.lower()}",
                      on_referenced_event)


def build_registry(reconcilers: Iterable[Reconciler], settings: Settings,
                   connection: kubeconfig.Connection | None = None) -> kopf.OperatorRegistry:
    """`connection` None: credentials are read when kopf logs in (in-cluster, else KUBECONFIG), as in a pod; a
    given one is kept, so an operator running in a process that points KUBECONFIG elsewhere later stays put."""
    registry = kopf.OperatorRegistry()
    reconcilers = list(reconcilers)
    operator_settings = settings

    @kopf.on.startup(registry=registry)
    async def startup(settings: kopf.OperatorSettings, memo: Any, **_: Any) -> None:
        configure(settings)
        watch_only_our_children(settings, reconcilers)
        quiet_watch_handlers(watch_event_handler_ids(reconcilers))
        api = ApiClient(connection or kubeconfig.load(), field_manager=operator_settings.field_manager)
        memo.api = api
        schemas = EngineSchemas(api)
        try:
            await schemas.load()
        except (aiohttp.ClientError, asyncio.TimeoutError) as err:  # read again on each kind's first write
            log.warning("engine CRDs not read at start-up: %s: %s", type(err).__name__, err)
        memo.loops = {r.resource.info.kind: Loop(r, api, operator_settings, schemas=schemas) for r in reconcilers}
        memo.resyncs = {kind: Resync(operator_settings.resync_seconds, functools.partial(run_pass, memo=memo))
                        for kind, run_pass in resync_passes.items()}
        memo.resync_tasks = [asyncio.create_task(r.run()) for r in memo.resyncs.values()]

    @kopf.on.login(registry=registry)
    def login(**_: Any) -> kopf.ConnectionInfo:
        """kopf logs in with the same credentials as our client."""
        conn = connection or kubeconfig.load()
        token = kubeconfig.TokenSource(conn).current()
        expiration = datetime.now(timezone.utc) + TOKEN_RELOGIN if conn.token_file else None
        return kopf.ConnectionInfo(
            server=conn.server, token=token, ca_path=conn.ca_file, insecure=conn.insecure,
            certificate_path=conn.cert_file, private_key_path=conn.key_file,
            default_namespace=conn.default_namespace, scheme="Bearer" if token else None, expiration=expiration)

    @kopf.on.cleanup(registry=registry)
    async def cleanup(memo: Any, **_: Any) -> None:
        tasks = getattr(memo, "resync_tasks", [])
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for loop in getattr(memo, "loops", {}).values():
            await loop.drain()
        if getattr(memo, "api", None) is not None:
            await memo.api.close()

    @kopf.on.probe(registry=registry, id="kinds")
    def probe(**_: Any) -> int:
        return len(reconcilers)

    listeners = EventListeners()
    resync_passes = {r.resource.info.kind: register_kind(registry, r, listeners) for r in reconcilers}
    listeners.register(registry)
    return registry
