"""Who may call the emulator: a client that holds its bearer token and names it by its loopback address.

The token is random per server and written into the kubeconfig the server hands out, so only someone who can
read that file (kubectl, the operator, the stand-ins, the Jobs they start) is let in: another local user, or a
web page that found the port, is not. The Host check is the defence against DNS rebinding: a page served from
`evil.example` whose name now resolves to 127.0.0.1 still sends `Host: evil.example:<port>`.

Kubernetes answers `/healthz`, `/livez` and `/readyz` without credentials; so does the emulator.
"""

from __future__ import annotations

import hmac
import json
import secrets
from typing import Awaitable, Callable

from aiohttp import web

from .errors import status_failure

UNAUTHENTICATED_PATHS = ("/healthz", "/livez", "/readyz")
LOOPBACK_NAMES = ("127.0.0.1", "localhost")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def new_token() -> str:
    return secrets.token_urlsafe(32)


def allowed_hosts(host: str, port: int) -> set[str]:
    """The Host header values a client of `host:port` sends: the bound address, and `localhost` for loopback."""
    names = {host, *LOOPBACK_NAMES} if host in LOOPBACK_NAMES else {host}
    return {f"{name}:{port}" for name in names}


def presented_token(request: web.Request) -> str | None:
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" and credentials.strip() else None


def _refusal(code: int, reason: str, message: str) -> web.Response:
    return web.Response(status=code, body=json.dumps(status_failure(code, message, reason)).encode(),
                        headers={"Content-Type": "application/json"})


def _unauthenticated(path: str) -> bool:
    return any(path == p or path.startswith(p + "/") for p in UNAUTHENTICATED_PATHS)


def middleware(token: str, hosts: Callable[[], set[str]]) -> Callable[[web.Request, Handler], Awaitable]:
    """Refuse a foreign Host with 403 and a missing or wrong bearer token with 401, as Status objects.

    `hosts` is called per request: the port is known only once the server is listening.
    """

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.host not in hosts():
            return _refusal(403, "Forbidden", f"host {request.host!r} is not this server's loopback address; "
                                              f"use {sorted(hosts())[0]}")
        if _unauthenticated(request.path):
            return await handler(request)
        presented = presented_token(request)
        if presented is None or not hmac.compare_digest(presented.encode(), token.encode()):
            return _refusal(401, "Unauthorized", "Unauthorized")
        return await handler(request)

    return check
