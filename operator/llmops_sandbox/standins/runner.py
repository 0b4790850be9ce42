"""Runs every stand-in controller on one background event loop."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from llmops_operator.k8s import kubeconfig
from llmops_operator.k8s.client import ApiClient
from llmops_sandbox.standins.jobs import JobRunner
from llmops_sandbox.standins.kserve import KServeRunner
from llmops_sandbox.standins.rayjobs import RayJobRunner


class StandInThread:
    def __init__(self, workdir: Path):
        self.workdir = workdir
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._main, name="llmops-standins", daemon=True)

    def _main(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with ApiClient(kubeconfig.load(), field_manager="llmops-sandbox") as api:
            standins = [JobRunner(api, self.workdir), RayJobRunner(api, self.workdir), KServeRunner(api, self.workdir)]
            tasks = [asyncio.create_task(s.run(self._stop)) for s in standins]
            self._started.set()
            await self._stop.wait()
            for task in tasks:
                task.cancel()
            for standin in standins:
                await standin.close()
            await asyncio.gather(*tasks, return_exceptions=True)

    def start(self) -> "StandInThread":
        self._thread.start()
        self._started.wait(30)
        return self

    def stop(self, timeout: float = 30.0) -> None:
        if self._loop and self._stop:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread.is_alive():
            self._thread.join(timeout)
