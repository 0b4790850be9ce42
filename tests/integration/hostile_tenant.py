"""The hostile tenant's endpoint and the watchdog that times the operator while a test abuses it."""

from __future__ import annotations

import asyncio
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiohttp import web

from kube_helpers import Kube

from llmops_operator.k8s.resources import resource_for

MiB = 1024 * 1024
KSERVE = resource_for("serving.kserve.io/v1beta1", "InferenceService")
CONFIGMAP = resource_for("v1", "ConfigMap")


# --- the hostile tenant's endpoint ------------------------------------------------------------------------------

class HostileEndpoint:
    """An aiohttp server on its own thread: /metrics streams 300 MiB, predictions answer for the forced version."""

    BODY = 300 * MiB

    def __init__(self) -> None:
        self.sent_per_scrape: list[int] = []
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="hostile-endpoint", daemon=True)
        self.port = 0

    async def _metrics(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/plain; version=0.0.4"})
        await response.prepare(request)
        chunk, sent = (b"llmops_guardrail_requests_total{version=\"v1\",outcome=\"allowed\"} 1\n" * 16384)[:MiB], 0
        try:
            while sent < self.BODY:
                await response.write(chunk)
                sent += len(chunk)
        except (ConnectionError, RuntimeError):
            pass
        finally:
            self.sent_per_scrape.append(sent)
        return response

    async def _predict(self, request: web.Request) -> web.Response:
        version = request.headers.get("x-llmops-prompt-version", "v1")
        return web.json_response({"predictions": [{"version": version, "text": "ok", "blocked": False,
                                                   "verdict": {"input": {"outcome": "allowed"}}}]})

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_post(r"/v1/models/{model}:predict", self._predict)
        self._runner = web.AppRunner(app)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]
        self._started.set()
        self._loop.run_forever()

    def __enter__(self) -> "HostileEndpoint":
        self._thread.start()
        self._started.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


# --- the watchdog -----------------------------------------------------------------------------------------------

class Watchdog:
    """Polls liveness and the loop's lag every 100 ms; notes any moment the watched KServe service was missing."""

    def __init__(self, operator: Any, kube: Kube) -> None:
        self.operator, self.kube = operator, kube
        self.phase = "start"
        self.liveness: list[float] = []
        self.lag: list[float] = []
        self.worst: dict[str, float] = {}
        """The operator's own worst wait (beyond the idle loop's) in each phase the test names."""
        self.failures: list[str] = []
        self.watched: tuple[str, str] | None = None
        self.uids_seen: set[str] = set()
        self.missing: list[str] = []
        self.control_lag: list[float] = []
        """The same tick and /healthz on an idle loop of this process, at the same moment: what the emulator
        (in-process here, not in a cluster) and the test itself cost every thread, for telling that apart from the
        operator's own blocking."""
        self._control = asyncio.new_event_loop()
        self._requests = ThreadPoolExecutor(1, thread_name_prefix="control-probe")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="watchdog", daemon=True)
        self._control_thread = threading.Thread(target=self._control.run_forever, name="control", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            self._probe()
            if self.watched:
                self._check_served(*self.watched)

    def _probe(self) -> None:
        """/healthz of the operator and of the idle loop, requested at once, with a tick sent to each loop too."""
        async def stamp() -> float:
            return time.monotonic()

        start = time.monotonic()
        operator_tick = asyncio.run_coroutine_threadsafe(stamp(), self.operator.loop)
        control_tick = asyncio.run_coroutine_threadsafe(stamp(), self._control)
        control_answer = self._requests.submit(self._get, self._control_url)
        self.liveness.append(self._get(self.operator.liveness_url))
        self.lag.append(operator_tick.result(10) - start)
        self.control_lag.append(max(control_tick.result(10) - start, control_answer.result(10)))
        own = max(self.liveness[-1], self.lag[-1]) - self.control_lag[-1]
        self.worst[self.phase] = max(self.worst.get(self.phase, 0.0), own)

    def _get(self, url: str) -> float:
        start = time.monotonic()
        try:
            with urllib.request.urlopen(url, timeout=10) as resp:
                resp.read()
        except OSError as err:
            self.failures.append(f"{url}: {err}")
        return time.monotonic() - start

    async def _serve_control(self) -> str:
        async def healthz(_: web.Request) -> web.Response:
            return web.Response(text="ok")

        app = web.Application()
        app.router.add_get("/healthz", healthz)
        self._control_runner = web.AppRunner(app)
        await self._control_runner.setup()
        site = web.TCPSite(self._control_runner, "127.0.0.1", 0)
        await site.start()
        return f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/healthz"

    def own_blocking(self) -> float:
        """The longest wait on the operator beyond what every thread of this process waited at the same moment."""
        return max((max(live, lag) - control for live, lag, control in zip(self.liveness, self.lag,
                                                                            self.control_lag)), default=0.0)

    def _check_served(self, namespace: str, name: str) -> None:
        """The KServe service exists, and so does every ConfigMap it mounts (policy, prompt versions, routing)."""
        child = self.kube.get(KSERVE, namespace, name)
        if child is None:
            self.missing.append(f"InferenceService {name}")
            return
        self.uids_seen.add(child["metadata"]["uid"])
        for config_map in mounted_config_maps(child):
            if self.kube.get(CONFIGMAP, namespace, config_map) is None:
                self.missing.append(f"ConfigMap {config_map}, mounted by {name}")

    def __enter__(self) -> "Watchdog":
        self._control_thread.start()
        self._control_url = asyncio.run_coroutine_threadsafe(self._serve_control(), self._control).result(10)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(15)
        self._requests.shutdown()
        asyncio.run_coroutine_threadsafe(self._control_runner.cleanup(), self._control).result(10)
        self._control.call_soon_threadsafe(self._control.stop)
        self._control_thread.join(5)

    def report(self) -> str:
        return (f"{len(self.liveness)} probes, liveness max {max(self.liveness, default=0):.3f}s, "
                f"loop lag max {max(self.lag, default=0):.3f}s "
                f"(an idle loop's {max(self.control_lag, default=0):.3f}s), "
                f"the operator's own at most {self.own_blocking():.3f}s, failures {self.failures[:3]}, worst by phase "
                + ", ".join(f"{phase} {seconds:.3f}s" for phase, seconds in self.worst.items()))


def mounted_config_maps(kserve: dict[str, Any]) -> set[str]:
    transformer = (kserve.get("spec") or {}).get("transformer") or {}
    return {v["configMap"]["name"] for v in transformer.get("volumes") or [] if "configMap" in v}
