"""aiohttp routes: REST verbs, watches, discovery, OpenAPI, health."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import yaml
from aiohttp import web

from . import auth, discovery, patch as patches, table as tables, tls
from .core import NS_KEY, Cluster
from .errors import ApiError
from .registry import Resource
from .selectors import matcher

log = logging.getLogger(__name__)
JSON = "application/json"
_STOP = object()


def _json(body: Any, status: int = 200, content_type: str = JSON) -> web.Response:
    return web.Response(status=status, body=json.dumps(body).encode(), headers={"Content-Type": content_type})


def _error(err: ApiError) -> web.Response:
    return _json(err.status(), err.code)


def _truthy(value: str | None) -> bool:
    return value is not None and value.lower() in ("1", "true", "t", "yes", "")


class Routes:
    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.streams: set[asyncio.Queue] = set()

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.dispatch)
        return app

    async def stop_watches(self) -> None:
        for queue in list(self.streams):
            queue.put_nowait(_STOP)

    # -- dispatch --------------------------------------------------------------------------------
    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        try:
            return await self._dispatch(request)
        except ApiError as err:
            return _error(err)
        except web.HTTPException:
            raise
        except Exception as err:  # pragma: no cover - a bug here should not kill the connection
            log.exception("internal error serving %s %s", request.method, request.path)
            return _error(ApiError(500, f"internal error: {err}", "InternalError"))

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path.rstrip("/") or "/"
        parts = [p for p in path.split("/") if p]
        accept = request.headers.get("Accept", "")
        registry = self.cluster.registry
        if path in ("/healthz", "/readyz", "/livez") or path.startswith(("/healthz/", "/readyz/", "/livez/")):
            return web.Response(text="ok", content_type="text/plain")
        if path == "/version":
            return _json(discovery.VERSION)
        if path == "/openapi/v3":
            return _json(discovery.openapi_root(registry))
        if parts[:2] == ["openapi", "v3"] and len(parts) in (4, 5):
            group, version = ("", parts[3]) if parts[2] == "api" else (parts[3], parts[4] if len(parts) > 4 else "")
            doc = discovery.openapi_document(registry, group, version)
            if doc is None:
                raise ApiError(404, "the server could not find the requested resource")
            return _json(doc)
        if path == "/openapi/v2":
            raise ApiError(404, "the server could not find the requested resource")
        if path == "/api":
            if discovery.wants_aggregated(accept):
                return _json(discovery.aggregated(registry, legacy=True), content_type=discovery.AGGREGATED)
            return _json(discovery.api_versions(request.host))
        if path == "/apis":
            if discovery.wants_aggregated(accept):
                return _json(discovery.aggregated(registry, legacy=False), content_type=discovery.AGGREGATED)
            return _json(discovery.group_list(registry))
        if parts[0] == "api" and len(parts) >= 2:
            group, version, rest = "", parts[1], parts[2:]
        elif parts[0] == "apis" and len(parts) >= 2:
            if len(parts) == 2:
                doc = discovery.group(registry, parts[1])
                if doc is None:
                    raise ApiError(404, "the server could not find the requested resource")
                return _json(doc)
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise ApiError(404, "the server could not find the requested resource")
        if not rest:
            doc = discovery.resource_list(registry, group, version)
            if doc is None:
                raise ApiError(404, "the server could not find the requested resource")
            return _json(doc)
        return await self._resource(request, group, version, rest)

    async def _resource(self, request: web.Request, group: str, version: str, rest: list[str]) -> web.StreamResponse:
        res, ns, name, sub = self._target(group, version, rest)
        dry_run = bool(request.query.getall("dryRun", []))
        # Handlers below run without awaiting between setting and using this, so it cannot leak.
        self.cluster.field_validation = request.query.get("fieldValidation", "")
        if name is None:
            return await self._on_collection(request, res, ns, dry_run)
        if res.namespaced and ns is None:
            raise ApiError(404, "the server could not find the requested resource")
        return await self._on_object(request, res, ns, name, sub, dry_run)

    def _target(self, group: str, version: str, rest: list[str]) -> tuple[Resource, str | None, str | None, str | None]:
        """(resource, namespace, name, subresource) a resource path names; 404 for anything the API has not."""
        ns = None
        if rest[0] == "namespaces" and len(rest) >= 3 and rest[2] not in ("status", "finalize"):
            ns, rest = rest[1], rest[2:]
        res = self.cluster.registry.lookup(group, version, rest[0]) if len(rest) <= 3 else None
        if res is None:
            raise ApiError(404, "the server could not find the requested resource")
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if sub == "finalize" and res.key == NS_KEY:
            sub = None
        if (sub and sub != "status") or (sub == "status" and not _status_allowed(res)) or \
                (ns is not None and not res.namespaced):
            raise ApiError(404, "the server could not find the requested resource")
        return res, ns, name, sub

    async def _on_collection(self, request: web.Request, res: Resource, ns: str | None,
                             dry_run: bool) -> web.StreamResponse:
        q, method = request.query, request.method
        if method == "GET":
            if _truthy(q.get("watch")) if "watch" in q else False:
                return await self._watch(request, res, ns)
            return self._list(request, res, ns)
        if method == "POST":
            if res.namespaced and ns is None:
                raise ApiError(405, "the server does not allow this method on the requested resource",
                               "MethodNotAllowed")
            obj = self.cluster.create(res, ns, await _body(request), dry_run)
            return self._send(request, res, obj, 201)
        if method == "DELETE" and (ns is not None or not res.namespaced):
            return self._delete_collection(request, res, ns, dry_run)
        raise ApiError(405, "the server does not allow this method on the requested resource", "MethodNotAllowed")

    async def _on_object(self, request: web.Request, res: Resource, ns: str | None, name: str, sub: str | None,
                         dry_run: bool) -> web.StreamResponse:
        method = request.method
        if method == "GET":
            return self._send(request, res, self.cluster.get(res, ns, name))
        if method == "PUT":
            obj, created = self.cluster.update(res, ns, name, await _body(request), sub, dry_run)
            return self._send(request, res, obj, 201 if created else 200)
        if method == "PATCH":
            return await self._patch(request, res, ns, name, sub, dry_run)
        if method == "DELETE":
            return await self._delete(request, res, ns, name, dry_run)
        raise ApiError(405, "the server does not allow this method on the requested resource", "MethodNotAllowed")

    async def _patch(self, request: web.Request, res: Resource, ns: str | None, name: str, sub: str | None,
                     dry_run: bool) -> web.Response:
        q, ctype = request.query, request.content_type
        if ctype == patches.APPLY_CBOR:
            raise ApiError(415, "apply-patch+cbor is not supported", "UnsupportedMediaType")
        if ctype not in patches.KINDS:
            raise ApiError(415, f"the body of the request was in an unknown format - accepted media types "
                                f"include: {', '.join(patches.KINDS)}", "UnsupportedMediaType")
        body = await _body(request, yaml_ok=(ctype == patches.APPLY))
        obj, created = self.cluster.patch(res, ns, name, ctype, body, sub, q.get("fieldManager"),
                                          _truthy(q.get("force")) if "force" in q else False, dry_run)
        return self._send(request, res, obj, 201 if created else 200)

    async def _delete(self, request: web.Request, res: Resource, ns: str | None, name: str,
                      dry_run: bool) -> web.Response:
        options: dict[str, Any] = {}
        if request.can_read_body:
            raw = await request.read()
            if raw.strip():
                try:
                    options = json.loads(raw)
                except ValueError as err:
                    raise ApiError(400, f"invalid delete options: {err}") from err
        propagation = request.query.get("propagationPolicy") or options.get("propagationPolicy")
        if options.get("orphanDependents") is True:
            propagation = "Orphan"
        obj = self.cluster.delete(res, ns, name, propagation, options.get("preconditions"),
                                  dry_run or bool(options.get("dryRun")))
        if self.cluster.store.get(res.key, ns if res.namespaced else None, name) is None:
            return _json(_deleted(res, obj))
        return self._send(request, res, obj)

    # -- responses -------------------------------------------------------------------------------
    def _send(self, request: web.Request, res: Resource, obj: dict[str, Any], code: int = 200) -> web.Response:
        if tables.wants_table(request.headers.get("Accept", "")):
            include = request.query.get("includeObject", "Metadata")
            return _json(tables.table(res, [obj], obj["metadata"].get("resourceVersion", ""), include), code)
        return _json(obj, code)

    def _list(self, request: web.Request, res: Resource, ns: str | None) -> web.Response:
        q = request.query
        match = matcher(q.get("labelSelector"), q.get("fieldSelector"))
        items = [self.cluster.view(res, o) for o in self.cluster.store.list(res.key, ns) if match(o)]
        rv = str(self.cluster.store.rv)
        if tables.wants_table(request.headers.get("Accept", "")):
            return _json(tables.table(res, items, rv, q.get("includeObject", "Metadata")))
        return _json({"kind": f"{res.kind}List", "apiVersion": res.api_version,
                      "metadata": {"resourceVersion": rv}, "items": items})

    def _delete_collection(self, request: web.Request, res: Resource, ns: str | None,
                           dry_run: bool) -> web.Response:
        """deletecollection: every object the selectors match, answered as the list of what was deleted."""
        q = request.query
        match = matcher(q.get("labelSelector"), q.get("fieldSelector"))
        names = [o["metadata"]["name"] for o in self.cluster.store.list(res.key, ns) if match(o)]
        items = [self.cluster.delete(res, ns, name, q.get("propagationPolicy"), None, dry_run) for name in names]
        return _json({"kind": f"{res.kind}List", "apiVersion": res.api_version,
                      "metadata": {"resourceVersion": str(self.cluster.store.rv)}, "items": items})

    async def _watch(self, request: web.Request, res: Resource, ns: str | None) -> web.StreamResponse:
        q = request.query
        match = matcher(q.get("labelSelector"), q.get("fieldSelector"))
        as_table = tables.wants_table(request.headers.get("Accept", ""))
        include = q.get("includeObject", "Metadata")
        since, timeout = _watch_window(q)
        response = web.StreamResponse(status=200, headers={"Content-Type": JSON,
                                                            "Transfer-Encoding": "chunked"})
        await response.prepare(request)
        try:
            watcher, backlog = self.cluster.store.subscribe(res.key, ns, since)
        except ApiError as err:
            await response.write((json.dumps({"type": "ERROR", "object": err.status()}) + "\n").encode())
            return response
        self.streams.add(watcher.queue)

        async def send(event_type: str, obj: dict[str, Any]) -> None:
            if not match(obj):
                return
            obj = self.cluster.view(res, obj)
            if as_table:
                obj = tables.table(res, [obj], obj["metadata"].get("resourceVersion", ""), include)
            await response.write((json.dumps({"type": event_type, "object": obj}) + "\n").encode())

        try:
            await _stream_events(watcher.queue, backlog, send, timeout)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.cluster.store.unsubscribe(watcher)
            self.streams.discard(watcher.queue)
        try:
            await response.write_eof()
        except (ConnectionResetError, RuntimeError):
            pass
        return response


def _deleted(res: Resource, obj: dict[str, Any]) -> dict[str, Any]:
    """What the real server answers when a DELETE removed the object at once (no finalizers held it)."""
    details = {"name": obj["metadata"]["name"], "group": res.group, "kind": res.plural,
               "uid": obj["metadata"].get("uid", "")}
    if not res.group:
        del details["group"]
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}


def _status_allowed(res: Resource) -> bool:
    from .core import has_status
    return has_status(res)


async def _body(request: web.Request, yaml_ok: bool = False) -> Any:
    raw = await request.read()
    if not raw.strip():
        raise ApiError(400, "the request body is empty")
    try:
        return json.loads(raw)
    except ValueError as err:
        if yaml_ok:
            try:
                return yaml.safe_load(raw)
            except yaml.YAMLError as yerr:
                raise ApiError(400, f"invalid YAML body: {yerr}") from yerr
        raise ApiError(400, f"invalid JSON body: {err}") from err


class ApiServer:
    """The emulator on an aiohttp HTTPS site: `await start()`, `.url`, `await stop()` (who gets in: auth.py)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, history: int = 1000, token: str | None = None) -> None:
        self.host = host
        self.port = port
        self.token = token or auth.new_token()
        self.certificate = tls.Certificate.self_signed(host)
        self.cluster = Cluster(history)
        self.routes = Routes(self.cluster)
        self._runner: web.AppRunner | None = None
        for name in ("default", "kube-system", "kube-public", "kube-node-lease"):
            res = self.cluster.registry.lookup("", "v1", "namespaces")
            self.cluster.create(res, None, {"metadata": {"name": name}})

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}"

    async def start(self) -> "ApiServer":
        app = self.routes.app()
        app.middlewares.append(auth.middleware(self.token, lambda: auth.allowed_hosts(self.host, self.port)))
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False,
                                     shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, ssl_context=self.certificate.server_context())
        await site.start()
        sockets = site._server.sockets if site._server else []  # type: ignore[union-attr]
        if sockets:
            self.port = sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        await self.routes.stop_watches()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> "ApiServer":
        return await self.start()

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()


def _watch_window(query: Any) -> tuple[int | None, float]:
    """(resourceVersion to start after, seconds to keep the watch open) from a watch request's query."""
    rv_param = query.get("resourceVersion")
    since = None if rv_param in (None, "", "0") else rv_param
    try:
        timeout = float(query.get("timeoutSeconds")) if query.get("timeoutSeconds") else 1800.0
    except ValueError:
        raise ApiError(400, "timeoutSeconds must be a number")
    try:
        return (int(since) if since is not None else None), timeout
    except ValueError:
        raise ApiError(400, f"invalid resourceVersion {since!r}")


async def _stream_events(queue: asyncio.Queue, backlog: list[Any], send: Any, timeout: float) -> None:
    """Send the backlog, then each new event, until the watch's time is up or the server stops it."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    for event in backlog:
        await send(event.type, event.obj)
    while (remaining := deadline - loop.time()) > 0:
        try:
            event = await asyncio.wait_for(queue.get(), remaining)
        except asyncio.TimeoutError:
            return
        if event is _STOP:
            return
        await send(event.type, event.obj)
