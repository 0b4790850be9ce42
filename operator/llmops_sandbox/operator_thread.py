"""The real operator on a background thread with its own event loop (sandbox and integration tests)."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from llmops_operator.cli.run import operator_coroutine
from llmops_operator.core.settings import Settings
from llmops_operator.k8s import kubeconfig


class OperatorThread:
    """Start the kopf operator against `kubeconfig_path`, else what KUBECONFIG points at when it is made; stop it
    cleanly.

    The credentials are read once, here: the thread shares the process's environment, and a caller that points
    KUBECONFIG elsewhere afterwards (a test acting as another user) must not move the operator with it."""

    def __init__(self, settings: Settings | None = None, namespaces: list[str] | None = None,
                 liveness_port: int = 0, kubeconfig_path: Path | str | None = None):
        self.settings = settings or Settings()
        self.connection = kubeconfig.from_kubeconfig(str(kubeconfig_path)) if kubeconfig_path else kubeconfig.load()
        self.namespaces = namespaces or []
        self.liveness_port = liveness_port
        """kopf serves /healthz here (0: off), answered on the operator's event loop like in a pod."""
        self.loop: asyncio.AbstractEventLoop | None = None
        """The operator's event loop, once started: callers can time how long it takes to run a coroutine."""
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name="llmops-operator", daemon=True)
        self.error: Exception | None = None

    def _main(self) -> None:
        try:
            asyncio.run(self._operate())
        except Exception as err:  # surfaced to the caller by start()
            self.error = err
            self._ready.set()

    async def _operate(self) -> None:
        self.loop = asyncio.get_running_loop()
        await operator_coroutine(self.settings, self.namespaces, self.liveness_port,
                                 stop_flag=self._stop, ready_flag=self._ready, connection=self.connection)

    @property
    def liveness_url(self) -> str | None:
        return f"http://127.0.0.1:{self.liveness_port}/healthz" if self.liveness_port else None

    def start(self, timeout: float = 30.0) -> "OperatorThread":
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("the operator did not become ready")
        if self.error:
            raise RuntimeError("the operator failed to start") from self.error
        return self

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def __enter__(self) -> "OperatorThread":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
