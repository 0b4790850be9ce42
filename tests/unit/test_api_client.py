"""The operator's API client against a real HTTP server whose accepted bearer token rotates, as a service-account
token does when the kubelet refreshes its projected file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from aiohttp import web

from llmops_operator.k8s.client import ApiClient, ApiError
from llmops_operator.k8s.kubeconfig import Connection
from local_http import local_server



class RotatingServer:
    """Answers GET /api/v1/namespaces/x only for `accepted`; records each token it was shown and its answer."""

    def __init__(self, accepted: str):
        self.accepted = accepted
        self.seen: list[tuple[str, int]] = []

    async def handle(self, request: web.Request) -> web.Response:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        code = 200 if token == self.accepted else 401
        self.seen.append((token, code))
        if code == 401:
            return web.json_response({"kind": "Status", "reason": "Unauthorized", "message": "Unauthorized"},
                                     status=401)
        return web.json_response({"kind": "Namespace", "metadata": {"name": "x"}})


@pytest.fixture
async def server():
    rotating = RotatingServer("t1")
    app = web.Application()
    app.router.add_get("/api/v1/namespaces/x", rotating.handle)
    async with local_server(app) as url:
        rotating.url = url  # type: ignore[attr-defined]
        yield rotating


def rotate(path: Path, token: str) -> None:
    """Replace the file atomically, as the kubelet swaps a projected volume's data."""
    fresh = path.with_name(path.name + ".new")
    fresh.write_text(token)
    os.replace(fresh, path)


async def get(api: ApiClient) -> dict:
    return await api.request("GET", "/api/v1/namespaces/x")


async def test_a_rotated_token_file_is_read_again_before_the_next_request(server, tmp_path):
    token = tmp_path / "token"
    token.write_text("t1\n")
    async with ApiClient(Connection(server=server.url, token_file=str(token))) as api:
        assert (await get(api))["metadata"]["name"] == "x"
        server.accepted = "t2"
        rotate(token, "t2")
        await get(api)
    assert server.seen == [("t1", 200), ("t2", 200)], "the new token was sent at once, with no 401 round trip"


async def test_a_401_reads_the_token_again_and_retries_once(server, tmp_path):
    token = tmp_path / "token"
    token.write_text("t1")
    async with ApiClient(Connection(server=server.url, token_file=str(token))) as api:
        await get(api)
        stamp = token.stat()
        server.accepted = "t2"
        token.write_text("t2")  # rewritten in place within the same mtime tick: only the 401 reveals it
        os.utime(token, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
        await get(api)
    assert server.seen == [("t1", 200), ("t1", 401), ("t2", 200)]


async def test_a_401_with_an_unchanged_token_is_an_error_not_a_loop(server, tmp_path):
    token = tmp_path / "token"
    token.write_text("stale")
    async with ApiClient(Connection(server=server.url, token_file=str(token))) as api:
        with pytest.raises(ApiError) as err:
            await get(api)
    assert err.value.status == 401 and server.seen == [("stale", 401)]


async def test_a_fixed_token_from_a_kubeconfig_is_sent_as_given(server):
    async with ApiClient(Connection(server=server.url, token="t1")) as api:
        await get(api)
    assert server.seen == [("t1", 200)]


async def test_a_kubeconfig_token_file_is_followed_too(server, tmp_path):
    import yaml

    from llmops_operator.k8s.kubeconfig import from_kubeconfig

    token = tmp_path / "token"
    token.write_text("t1")
    config = tmp_path / "config"
    config.write_text(yaml.safe_dump({
        "clusters": [{"name": "c", "cluster": {"server": server.url}}],
        "users": [{"name": "u", "user": {"tokenFile": str(token)}}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}], "current-context": "x"}))
    async with ApiClient(from_kubeconfig(str(config))) as api:
        await get(api)
        server.accepted = "t2"
        rotate(token, "t2")
        await get(api)
    assert server.seen == [("t1", 200), ("t2", 200)]


def test_kopf_logs_in_with_the_current_token_and_again_before_it_goes_stale(tmp_path, monkeypatch):
    """In a pod, kopf's own connection reads the projected token file and expires, so kopf calls login again and
    picks up the rotated token (it also does on any 401)."""
    from datetime import datetime, timezone

    from kopf._core.intents.causes import Activity

    from llmops_operator.controllers.operator import TOKEN_RELOGIN, build_registry
    from llmops_operator.core.settings import Settings
    from llmops_operator.k8s import kubeconfig

    for name, text in {"token": "t1\n", "ca.crt": "", "namespace": "ops"}.items():
        (tmp_path / name).write_text(text)
    monkeypatch.setattr(kubeconfig, "SERVICE_ACCOUNT", tmp_path)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    (login,) = build_registry([], Settings())._activities.get_handlers(activity=Activity.AUTHENTICATION)

    first = login.fn()
    rotate(tmp_path / "token", "t2")
    second = login.fn()

    assert (first.token, second.token) == ("t1", "t2")
    assert first.expiration - datetime.now(timezone.utc) <= TOKEN_RELOGIN


async def test_requests_queued_for_a_connection_do_not_time_out_while_the_server_answers_each_in_time():
    """More requests than the pool has connections, each answered well within the timeout: the last ones wait for a
    connection longer than the timeout, which bounds the server, not the queue."""
    import asyncio

    from llmops_operator.k8s.client import POOL_CONNECTIONS

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(0.5)
        return web.json_response({"kind": "Namespace", "metadata": {"name": "x"}})

    app = web.Application()
    app.router.add_get("/api/v1/namespaces/x", slow)
    # Twelve rounds of 0.5 s queue the last requests 6 s, twice the timeout. Each answer and each new connection
    # leaves 2.5 s of slack: on a loaded machine this process can be off the CPU for seconds, and the timeout also
    # bounds the socket connect, which is timed by the event loop that the server shares.
    async with local_server(app) as url, ApiClient(Connection(server=url), timeout=3.0) as api:
        answers = await asyncio.gather(*(get(api) for _ in range(POOL_CONNECTIONS * 12)))
    assert all(a["metadata"]["name"] == "x" for a in answers)
