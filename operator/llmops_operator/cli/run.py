"""`llmops run`: the operator process, optionally one of several replicas behind a leader-election Lease."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading

from llmops_operator.controllers.kopf_lean import kopf
from aiohttp import web
from prometheus_client import start_http_server

from llmops_operator.observability import tracing
from llmops_operator.controllers.kinds import all_reconcilers
from llmops_operator.controllers.operator import build_registry
from llmops_operator.core.settings import Settings
from llmops_operator.k8s import kubeconfig
from llmops_operator.k8s.client import ApiClient
from llmops_operator.k8s.leader import Election, LeaderElector

log = logging.getLogger("llmops.run")
LOST_LEADERSHIP = 3
"""Exit status when the Lease is lost: the pod restarts and stands by as a candidate."""


def operator_coroutine(settings: Settings, namespaces: list[str], liveness_port: int = 0,
                       stop_flag: threading.Event | asyncio.Event | None = None,
                       ready_flag: threading.Event | None = None,
                       connection: kubeconfig.Connection | None = None):
    """The operator as a coroutine (used by `llmops run`, the sandbox and the integration tests)."""
    registry = build_registry(all_reconcilers(), settings, connection)
    return kopf.operator(
        registry=registry,
        standalone=True,
        clusterwide=not namespaces,
        namespaces=namespaces or (),
        liveness_endpoint=f"http://0.0.0.0:{liveness_port}/healthz" if liveness_port else None,
        stop_flag=stop_flag,
        ready_flag=ready_flag,
    )


def election_from_environment(lease_name: str, lease_namespace: str | None) -> Election:
    """The Lease in the operator's own namespace (POD_NAMESPACE, else the service account's), held as POD_NAME."""
    namespace = lease_namespace or os.environ.get("POD_NAMESPACE") or kubeconfig.load().default_namespace
    identity = os.environ.get("POD_NAME") or socket.gethostname()
    return Election(namespace=namespace, name=lease_name, identity=identity)


async def _standby_liveness(port: int) -> web.AppRunner | None:
    """/healthz while a replica waits for the Lease (kopf serves it once leading), so standby is not restarted."""
    if not port:
        return None
    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"standby": True})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "0.0.0.0", port).start()
    return runner


async def lead_then_operate(settings: Settings, namespaces: list[str], election: Election, liveness_port: int = 0,
                            stop_flag: asyncio.Event | None = None) -> int:
    """Wait for the Lease, run the operator while it is held; stop at once when it is lost (LOST_LEADERSHIP)."""
    stop_flag = stop_flag or asyncio.Event()
    async with ApiClient(kubeconfig.load(), field_manager=settings.field_manager) as api:
        elector = LeaderElector(api, election)
        standby = await _standby_liveness(liveness_port)
        try:
            await elector.acquire()
        finally:
            if standby is not None:
                await standby.cleanup()
        operating = asyncio.create_task(operator_coroutine(settings, namespaces, liveness_port, stop_flag=stop_flag))
        holding = asyncio.create_task(elector.hold())
        done, _ = await asyncio.wait({operating, holding}, return_when=asyncio.FIRST_COMPLETED)
        if holding in done:
            log.error("stopping: %s; another replica may lead now", holding.result())
            stop_flag.set()
            await asyncio.wait({operating}, timeout=settings.resync_seconds)
            return LOST_LEADERSHIP
        holding.cancel()
        await elector.release()
        operating.result()
        return 0


def run_operator(namespaces: list[str], all_namespaces: bool, liveness_port: int, metrics_port: int,
                 election: Election | None = None) -> int:
    settings = Settings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if metrics_port:
        start_http_server(metrics_port)
    tracing.configure(settings.otel_endpoint, settings.otel_service_name)
    watched = [] if all_namespaces else namespaces
    if election is not None:
        return asyncio.run(lead_then_operate(settings, watched, election, liveness_port))
    asyncio.run(operator_coroutine(settings, watched, liveness_port))
    return 0
