"""`llmops run`: the operator process."""

from __future__ import annotations

import asyncio
import logging
import threading

import kopf
from prometheus_client import start_http_server

from llmops_operator.observability import tracing
from llmops_operator.controllers.kinds import all_reconcilers
from llmops_operator.controllers.operator import build_registry
from llmops_operator.core.settings import Settings


def operator_coroutine(settings: Settings, namespaces: list[str], liveness_port: int = 0,
                       stop_flag: threading.Event | None = None, ready_flag: threading.Event | None = None):
    """The operator as a coroutine (used by `llmops run`, the sandbox and the integration tests)."""
    registry = build_registry(all_reconcilers(), settings)
    return kopf.operator(
        registry=registry,
        standalone=True,
        clusterwide=not namespaces,
        namespaces=namespaces or (),
        liveness_endpoint=f"http://0.0.0.0:{liveness_port}/healthz" if liveness_port else None,
        stop_flag=stop_flag,
        ready_flag=ready_flag,
    )


def run_operator(namespaces: list[str], all_namespaces: bool, liveness_port: int, metrics_port: int) -> int:
    settings = Settings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if metrics_port:
        start_http_server(metrics_port)
    tracing.configure(settings.otel_endpoint, settings.otel_service_name)
    asyncio.run(operator_coroutine(settings, [] if all_namespaces else namespaces, liveness_port))
    return 0
