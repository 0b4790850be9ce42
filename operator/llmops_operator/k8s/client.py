"""A small async Kubernetes API client for the operator's children and status writes.

kopf watches and calls handlers; this client does the writes. Children are applied with
server-side apply: one request per child, idempotent, no get-then-create race, and the API
server returns the live object (with its status) so the reducers need no second read.
"""

from __future__ import annotations

import json
from typing import Any, AsyncIterator

import aiohttp

from llmops_operator.observability import tracing
from llmops_operator.k8s.capped import read_text_capped
from llmops_operator.k8s.kubeconfig import Connection, TokenSource
from llmops_operator.k8s.resources import ApiResource, resource_of


class ApiError(Exception):
    """An error Status from the API server."""

    def __init__(self, status: int, body: dict[str, Any] | str):
        self.status = status
        self.body: dict[str, Any] = body if isinstance(body, dict) else {"message": body}
        super().__init__(f"{status} {self.reason}: {self.body.get('message', '')}")

    @property
    def reason(self) -> str:
        return self.body.get("reason", "")

    @property
    def message(self) -> str:
        return str(self.body.get("message", ""))


class NotFound(ApiError):
    @property
    def missing_type(self) -> bool:
        """The resource type itself is not served (no CRD), rather than one object of it being absent: the server
        names the object in `details` only in the second case."""
        return not (self.body.get("details") or {}).get("name")


class Conflict(ApiError):
    pass


def _error(status: int, body: Any) -> ApiError:
    cls = {404: NotFound, 409: Conflict}.get(status, ApiError)
    return cls(status, body)


POOL_CONNECTIONS = 32
"""Connections the operator's client keeps open to the API server; further requests wait for one."""


class ApiClient:
    def __init__(self, connection: Connection, field_manager: str = "llmops-operator",
                 timeout: float = 30.0):
        self.connection = connection
        self.field_manager = field_manager
        self.token = TokenSource(connection)
        headers = {"Accept": "application/json", "User-Agent": "llmops-operator"}
        self._session = aiohttp.ClientSession(
            base_url=connection.server,
            headers=headers,
            # The timeout bounds the server, not the wait for one of the pool's connections: when a thousand
            # objects are reconciled at once their requests queue for the pool longer than any one of them takes.
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=timeout, sock_read=timeout),
            connector=aiohttp.TCPConnector(ssl=connection.ssl_context(), limit=POOL_CONNECTIONS),
        )

    async def close(self) -> None:
        await self._session.close()

    async def __aenter__(self) -> "ApiClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def request(self, method: str, path: str, body: Any = None, *, content_type: str = "application/json",
                      params: dict[str, str] | None = None, max_bytes: int | None = None) -> dict[str, Any]:
        """The answer as a dict; with max_bytes, BodyTooLarge instead of reading a larger one."""
        data = None if body is None else json.dumps(body)
        headers = {"Content-Type": content_type} if data is not None else {}
        with tracing.request_span(method, path) as span:
            status, text, json_body, used = await self._send(method, path, data, headers, params, max_bytes)
            if status == 401 and self.token.refresh() != used:
                status, text, json_body, _ = await self._send(method, path, data, headers, params, max_bytes)
            tracing.record_response(span, status)
        payload = json.loads(text) if text and json_body else text
        if status >= 400:
            raise _error(status, payload)
        return payload if isinstance(payload, dict) else {}

    async def _send(self, method: str, path: str, data: str | None, headers: dict[str, str],
                    params: dict[str, str] | None, max_bytes: int | None) -> tuple[int, str, bool, str | None]:
        """One request; (status, body text, whether it is JSON, the token it carried). A 401 is retried by the
        caller once, and only when the token file now holds a different token."""
        token = self.token.current()
        async with self._session.request(method, path, data=data, headers=self._auth(headers, token),
                                         params=params) as resp:
            text = await resp.text() if max_bytes is None else \
                await read_text_capped(resp, max_bytes, f"{method} {path}")
            return resp.status, text, resp.content_type == "application/json", token

    @staticmethod
    def _auth(headers: dict[str, str], token: str | None) -> dict[str, str]:
        return {**headers, "Authorization": f"Bearer {token}"} if token else headers

    # ----- typed conveniences -----

    async def get(self, resource: ApiResource, namespace: str | None, name: str,
                  max_bytes: int | None = None) -> dict[str, Any]:
        return await self.request("GET", resource.path(namespace, name), max_bytes=max_bytes)

    async def get_or_none(self, resource: ApiResource, namespace: str | None, name: str,
                          max_bytes: int | None = None) -> dict[str, Any] | None:
        try:
            return await self.get(resource, namespace, name, max_bytes)
        except NotFound:
            return None

    async def list(self, resource: ApiResource, namespace: str | None = None,
                   label_selector: str | None = None) -> list[dict[str, Any]]:
        params = {"labelSelector": label_selector} if label_selector else None
        return (await self.request("GET", resource.path(namespace), params=params)).get("items", [])

    async def apply(self, obj: dict[str, Any], *, force: bool = True) -> dict[str, Any]:
        """Server-side apply `obj` (create or update the fields this manager owns); returns the live object."""
        resource = resource_of(obj)
        meta = obj["metadata"]
        params = {"fieldManager": self.field_manager, "force": "true" if force else "false"}
        return await self.request("PATCH", resource.path(meta.get("namespace"), meta["name"]), obj,
                                  content_type="application/apply-patch+yaml", params=params)

    async def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Create `obj` (Conflict when its name is taken); returns the live object."""
        resource = resource_of(obj)
        return await self.request("POST", resource.path(obj["metadata"].get("namespace")), obj,
                                  params={"fieldManager": self.field_manager})

    async def patch(self, resource: ApiResource, namespace: str | None, name: str, patch: dict[str, Any],
                    *, subresource: str | None = None) -> dict[str, Any]:
        return await self.request("PATCH", resource.path(namespace, name, subresource), patch,
                                  content_type="application/merge-patch+json")

    async def patch_status(self, resource: ApiResource, namespace: str, name: str,
                           status: dict[str, Any]) -> dict[str, Any]:
        return await self.patch(resource, namespace, name, {"status": status}, subresource="status")

    async def watch(self, resource: ApiResource, namespace: str | None = None, *,
                    resource_version: str | None = None, label_selector: str | None = None,
                    timeout_seconds: int = 300) -> AsyncIterator[dict[str, Any]]:
        """Watch events ({type, object}) from `resource_version` on; the stream ends after timeout_seconds."""
        params = {"watch": "true", "timeoutSeconds": str(timeout_seconds), "allowWatchBookmarks": "true"}
        if resource_version:
            params["resourceVersion"] = resource_version
        if label_selector:
            params["labelSelector"] = label_selector
        timeout = aiohttp.ClientTimeout(total=None, sock_read=timeout_seconds + 30)
        async with self._session.get(resource.path(namespace), params=params, timeout=timeout,
                                     headers=self._auth({}, self.token.current())) as resp:
            if resp.status == 401:
                self.token.refresh()
            if resp.status >= 400:
                raise _error(resp.status, await resp.text())
            async for line in resp.content:
                if line.strip():
                    yield json.loads(line)

    async def list_with_version(self, resource: ApiResource, namespace: str | None = None,
                                label_selector: str | None = None) -> tuple[list[dict[str, Any]], str]:
        params = {"labelSelector": label_selector} if label_selector else None
        listing = await self.request("GET", resource.path(namespace), params=params)
        return listing.get("items", []), listing.get("metadata", {}).get("resourceVersion", "")

    async def delete(self, resource: ApiResource, namespace: str | None, name: str,
                     propagation: str = "Background", *, uid: str | None = None) -> None:
        """Delete, if present; with `uid`, only that very object (a same-named successor answers 409)."""
        options: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": propagation}
        if uid:
            options["preconditions"] = {"uid": uid}
        try:
            await self.request("DELETE", resource.path(namespace, name), options)
        except NotFound:
            pass
