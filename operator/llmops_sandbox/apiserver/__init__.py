"""An in-process Kubernetes API server emulator (aiohttp) for the sandbox and the tests.

    with ApiServerThread() as server:
        server.write_kubeconfig(path)   # then kubectl / kopf / our client talk to server.url

Every request but the health probes carries the server's bearer token (`server.token`, also in the
kubeconfig) and names the server by its loopback address (see auth.py).
"""

from __future__ import annotations

import asyncio
import os
import ssl
import threading
from pathlib import Path
from typing import Any

import yaml

from .app import ApiServer
from .auth import new_token
from .cel import implementation as cel_implementation

__all__ = ["ApiServer", "ApiServerThread", "cel_implementation", "kubeconfig"]


def kubeconfig(url: str, token: str, certificate_path: Path, name: str = "llmops-sandbox") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {
            "server": url, "certificate-authority": str(certificate_path)}}],
        "users": [{"name": name, "user": {"token": token}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name, "namespace": "default"}}],
        "current-context": name,
        "preferences": {},
    }


class ApiServerThread:
    """`ApiServer` on its own event loop in a daemon thread; a context manager."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, history: int = 1000) -> None:
        self.host = host
        self.token = new_token()
        self._port = port
        self._history = history
        self.server: ApiServer | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def port(self) -> int:
        assert self.server is not None, "not started"
        return self.server.port

    @property
    def url(self) -> str:
        assert self.server is not None, "not started"
        return self.server.url

    def start(self) -> "ApiServerThread":
        self._thread = threading.Thread(target=self._run, name="llmops-apiserver", daemon=True)
        self._thread.start()
        self._ready.wait(30)
        if self._error is not None:
            raise RuntimeError(f"the API server emulator failed to start: {self._error}") from self._error
        if not self._ready.is_set():
            raise RuntimeError("the API server emulator did not start within 30 s")
        return self

    def _run(self) -> None:
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        try:
            self.server = ApiServer(self.host, self._port, self._history, self.token)
            self.loop.run_until_complete(self.server.start())
        except BaseException as err:  # surfaced by start()
            self._error = err
            self._ready.set()
            return
        self._ready.set()
        try:
            self.loop.run_forever()
        finally:
            self.loop.run_until_complete(self.server.stop())
            self.loop.close()

    def stop(self) -> None:
        if self.loop is not None and self._thread is not None and self._thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)

    def call(self, fn, *args: Any) -> Any:
        """Run `fn(*args)` on the server's loop (e.g. to inspect `server.cluster`) and return its result."""
        assert self.loop is not None

        async def run() -> Any:
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(10)

    def ssl_context(self) -> ssl.SSLContext:
        """What a plain HTTPS client trusts to reach this server (its certificate only)."""
        assert self.server is not None, "not started"
        return self.server.certificate.client_context()

    @property
    def headers(self) -> dict[str, str]:
        """What a plain HTTP client sends to be let in."""
        return {"Authorization": f"Bearer {self.token}"}

    def write_kubeconfig(self, path: str | Path) -> Path:
        """The kubeconfig holds the token: it is readable by its owner only. The server's certificate goes beside
        it (`<path>.crt`), named by path: a client need not write it out to a file of its own each time."""
        path = Path(path).resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        certificate = path.with_name(path.name + ".crt")
        certificate.write_bytes(self.server.certificate.certificate_pem)
        text = yaml.safe_dump(kubeconfig(self.url, self.token, certificate), sort_keys=False)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(descriptor, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(text)
        return path

    def __enter__(self) -> "ApiServerThread":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
