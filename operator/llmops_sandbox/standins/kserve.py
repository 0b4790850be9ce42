"""The KServe stand-in: each serving.kserve.io/v1beta1 InferenceService runs as local model-server processes.

The predictor runs on a free port; once it is ready, the transformer runs (how each is planned: kserve_plans.py).
Both are children of the sandbox (processes.py). Status is written as KServe writes it (see kserve_status.py);
the URL is the transformer's (else the predictor's) http://127.0.0.1:<port>, reachable from this machine.

A component restarts only when its own spec changes (a new policy ConfigMap restarts the transformer, a new
storageUri the predictor, on the same port). ConfigMaps whose name is unchanged are re-read every pass and their
files rewritten in place, as the kubelet refreshes a mounted ConfigMap: the runtime reloads them without a restart.
A process that exits is reported Failed (RevisionFailed, with the last line of its log) and is started again
only when its spec changes. Processes are stopped when the InferenceService is deleted and when the sandbox stops.
KServe's stop switch is honoured: with the annotation `serving.kserve.io/stop: "true"` every component process is
stopped and the service reports Stopped, not Ready; removing the annotation starts them again.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import aiohttp

from llmops_operator.builders.naming import short_hash
from llmops_operator.k8s.client import ApiClient, ApiError
from llmops_operator.k8s.resources import resource_for
from llmops_sandbox import processes
from llmops_sandbox.ports import free_port
from llmops_sandbox.standins.base import StandIn
from llmops_sandbox.standins.jobs import CONFIGMAP, SECRET, ProcessPlan, referenced_sources
from llmops_sandbox.standins.kserve_plans import (
    HOST, Unservable, last_log_line, make_links, predictor_plan, predictor_pod, transformer_plan,
    transformer_pod, write_files,
)
from llmops_sandbox.standins.kserve_status import (
    FAILED, PREDICTOR, READY, STARTING, TRANSFORMER, ComponentState, is_stopped, service_status, stopped_status,
)
from llmops_operator.core.conditions import now_rfc3339

log = logging.getLogger("llmops.sandbox.kserve")

ISVC = resource_for("serving.kserve.io/v1beta1", "InferenceService")
PASS_SECONDS = 1.0
"""How often a service is re-examined (probes, mounted files) when no event arrives."""
STOP_GRACE_SECONDS = 5.0


@dataclass
class Component:
    """One running (or failed) component process."""

    spec_hash: str
    state: ComponentState
    port: int
    log_path: Path
    process: asyncio.subprocess.Process | None = None


@dataclass
class Service:
    obj: dict[str, Any]
    root: Path
    predictor_port: int
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    components: dict[str, Component] = field(default_factory=dict)
    revisions: dict[str, int] = field(default_factory=dict)
    written: dict[str, Any] | None = None
    task: asyncio.Task | None = None


async def stop_process(process: asyncio.subprocess.Process | None) -> None:
    await processes.stop(process, STOP_GRACE_SECONDS)


class KServeRunner(StandIn):
    resource = ISVC

    def __init__(self, api: ApiClient, workdir: Path):
        super().__init__(api)
        self.workdir = workdir
        self.pvc_root = workdir / "pvc"
        self._services: dict[str, Service] = {}
        self._http: aiohttp.ClientSession | None = None

    async def handle(self, obj: dict[str, Any]) -> None:
        uid = obj["metadata"]["uid"]
        service = self._services.get(uid)
        if service is None:
            meta = obj["metadata"]
            service = Service(obj=obj, root=self.workdir / "kserve" / meta["namespace"] / meta["name"],
                              predictor_port=free_port())
            self._services[uid] = service
            service.task = asyncio.create_task(self._supervise(service), name=f"isvc-{meta['name']}")
        service.obj = obj
        service.wake.set()

    async def forget(self, obj: dict[str, Any]) -> None:
        service = self._services.pop(obj["metadata"]["uid"], None)
        if service:
            await self._shutdown(service)

    async def close(self) -> None:
        services, self._services = list(self._services.values()), {}
        await asyncio.gather(*(self._shutdown(s) for s in services), return_exceptions=True)
        if self._http is not None:
            await self._http.close()

    async def _shutdown(self, service: Service) -> None:
        if service.task:
            service.task.cancel()
            await asyncio.gather(service.task, return_exceptions=True)
        await asyncio.gather(*(stop_process(c.process) for c in service.components.values()))
        service.components.clear()

    async def _supervise(self, service: Service) -> None:
        while True:
            service.wake.clear()
            try:
                await self._reconcile(service)
            except ApiError as err:
                log.warning("InferenceService %s: %s", service.obj["metadata"]["name"], err)
            try:
                await asyncio.wait_for(service.wake.wait(), timeout=PASS_SECONDS)
            except asyncio.TimeoutError:
                pass

    async def _reconcile(self, service: Service) -> None:
        spec = service.obj["spec"]
        if is_stopped(service.obj):
            await self._stop(service, bool(spec.get("transformer")))
            return
        desired = {PREDICTOR: short_hash(spec.get("predictor") or {})}
        if spec.get("transformer"):
            desired[TRANSFORMER] = short_hash(spec["transformer"])
        for name in [n for n in service.components if n not in desired]:
            await stop_process(service.components.pop(name).process)
        if self._changed(service, PREDICTOR, desired[PREDICTOR]):
            await self._start_predictor(service, desired[PREDICTOR])
        elif service.components[PREDICTOR].process is not None:
            await self._refresh_predictor_mounts(service)
        await self._probe(service, PREDICTOR)
        if TRANSFORMER in desired:
            await self._reconcile_transformer(service, desired[TRANSFORMER])
        await self._write_status(service, TRANSFORMER in desired)

    async def _stop(self, service: Service, wants_transformer: bool) -> None:
        """KServe's stop: the components' processes go (they start afresh once the annotation is removed)."""
        running = [c for c in service.components.values() if c.process is not None]
        await asyncio.gather(*(stop_process(c.process) for c in running))
        if running:
            log.info("InferenceService %s: stopped (%s)", service.obj["metadata"]["name"],
                     ", ".join(c.state.component for c in running))
        service.components.clear()
        await self._publish(service, stopped_status(self._with_written(service), wants_transformer, now_rfc3339()))

    @staticmethod
    def _changed(service: Service, name: str, spec_hash: str) -> bool:
        current = service.components.get(name)
        return current is None or current.spec_hash != spec_hash

    async def _reconcile_transformer(self, service: Service, spec_hash: str) -> None:
        predictor = service.components[PREDICTOR].state
        if self._changed(service, TRANSFORMER, spec_hash):
            if predictor.phase != READY and TRANSFORMER not in service.components:
                return  # KServe's order here: the transformer comes up once the predictor serves
            await self._start_transformer(service, spec_hash)
        elif service.components[TRANSFORMER].process is not None:
            await self._refresh_mounts(service)
        await self._probe(service, TRANSFORMER)

    def _next_revision(self, service: Service, name: str) -> int:
        service.revisions[name] = service.revisions.get(name, 0) + 1
        return service.revisions[name]

    async def _start_predictor(self, service: Service, spec_hash: str) -> None:
        old = service.components.pop(PREDICTOR, None)
        await stop_process(old.process if old else None)
        revision = self._next_revision(service, PREDICTOR)
        port = service.predictor_port
        try:
            plan = predictor_plan(service.obj, self.pvc_root, port, sources=await self._sources(service.obj),
                                  root=service.root / PREDICTOR)
            model_dir = Path(plan.argv[plan.argv.index("--model_dir") + 1])
            if not model_dir.is_dir():
                uri = service.obj["spec"]["predictor"]["model"]["storageUri"]
                raise Unservable("ModelLoadFailed", f"storageUri {uri}: {model_dir} does not exist")
        except Unservable as err:
            service.components[PREDICTOR] = self._failed(spec_hash, PREDICTOR, revision, port, err, service.root)
            return
        service.components[PREDICTOR] = await self._spawn(service, PREDICTOR, spec_hash, revision, port, plan)

    async def _start_transformer(self, service: Service, spec_hash: str) -> None:
        old = service.components.pop(TRANSFORMER, None)
        await stop_process(old.process if old else None)
        revision = self._next_revision(service, TRANSFORMER)
        port = free_port()
        try:
            plan = transformer_plan(service.obj, await self._sources(service.obj), service.root / TRANSFORMER,
                                    self.pvc_root, service.predictor_port, port)
        except Unservable as err:
            service.components[TRANSFORMER] = self._failed(spec_hash, TRANSFORMER, revision, port, err, service.root)
            return
        shutil.rmtree(service.root / TRANSFORMER / "fs", ignore_errors=True)  # links of the previous revision
        make_links(plan.links)
        service.components[TRANSFORMER] = await self._spawn(service, TRANSFORMER, spec_hash, revision, port,
                                                            plan.process)

    @staticmethod
    def _failed(spec_hash: str, name: str, revision: int, port: int, err: Unservable, root: Path) -> Component:
        state = ComponentState(name, FAILED, revision, reason=err.reason, message=str(err), since=now_rfc3339())
        return Component(spec_hash, state, port, root / f"{name}-{revision:05d}.log")

    async def _spawn(self, service: Service, name: str, spec_hash: str, revision: int, port: int,
                     plan: ProcessPlan) -> Component:
        for directory in plan.directories:
            directory.mkdir(parents=True, exist_ok=True)
        write_files(plan.files)
        log_path = service.root / f"{name}-{revision:05d}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("wb") as out:
            process = await processes.spawn(plan.argv, STOP_GRACE_SECONDS, env={**os.environ, **plan.env},
                                            stdout=out, stderr=asyncio.subprocess.STDOUT, cwd=log_path.parent)
        log.info("InferenceService %s: %s revision %d started on port %d (pid %d)",
                 service.obj["metadata"]["name"], name, revision, port, process.pid)
        state = ComponentState(name, STARTING, revision, url=f"http://{HOST}:{port}", since=now_rfc3339())
        return Component(spec_hash, state, port, log_path, process)

    async def _sources(self, obj: dict[str, Any]) -> dict[tuple[str, str], dict | None]:
        where = {"ConfigMap": CONFIGMAP, "Secret": SECRET}
        ns = obj["metadata"]["namespace"]
        pods = [predictor_pod(obj), *([transformer_pod(obj)] if obj["spec"].get("transformer") else [])]
        return {(kind, name): await self.api.get_or_none(where[kind], ns, name)
                for pod in pods for kind, name in referenced_sources(pod)}

    async def _refresh_predictor_mounts(self, service: Service) -> None:
        """Rewrite the predictor's mounted ConfigMap files in place (the adapters list it reloads while it runs)."""
        component = service.components[PREDICTOR]
        try:
            plan = predictor_plan(service.obj, self.pvc_root, component.port, sources=await self._sources(service.obj),
                                  root=service.root / PREDICTOR)
        except Unservable:
            return
        for path in write_files(plan.files):
            log.info("InferenceService %s: refreshed %s", service.obj["metadata"]["name"], path)

    async def _refresh_mounts(self, service: Service) -> None:
        """Rewrite mounted ConfigMap files whose content changed under an unchanged name."""
        component = service.components[TRANSFORMER]
        try:
            plan = transformer_plan(service.obj, await self._sources(service.obj), service.root / TRANSFORMER,
                                    self.pvc_root, service.predictor_port, component.port)
        except Unservable:
            return  # the spec did not change, so this is a source that vanished: keep the files as they are
        for path in write_files(plan.process.files):
            log.info("InferenceService %s: refreshed %s", service.obj["metadata"]["name"], path)

    async def _probe(self, service: Service, name: str) -> None:
        component = service.components.get(name)
        if component is None or component.process is None or component.state.phase == FAILED:
            return
        state = component.state
        if component.process.returncode is not None:
            message = f"exit code {component.process.returncode}: {last_log_line(component.log_path)}"
            component.state = replace(state, phase=FAILED, reason="RevisionFailed", message=message,
                                      since=now_rfc3339())
            return
        phase, reason, message = await self._readiness(service.obj["metadata"]["name"], state.url)
        if (phase, reason, message) != (state.phase, state.reason, state.message):
            component.state = replace(state, phase=phase, reason=reason, message=message, since=now_rfc3339())

    async def _readiness(self, model: str, url: str | None) -> tuple[str, str, str]:
        """KServe's readiness probe: GET /v1/models/<name>; a load error the server reports is a failure."""
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2))
        try:
            async with self._http.get(f"{url}/v1/models/{model}") as response:
                if response.status == 200:
                    return READY, "", ""
                body = await response.json(content_type=None)
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError):
            return STARTING, "Deploying", "waiting for the model server to answer its readiness probe"
        if isinstance(body, dict) and body.get("error"):
            return FAILED, "ModelLoadFailed", str(body["error"])
        return STARTING, "Deploying", "the model server is loading the model"

    @staticmethod
    def _with_written(service: Service) -> dict[str, Any]:
        return service.obj if service.written is None else {**service.obj, "status": service.written}

    async def _write_status(self, service: Service, wants_transformer: bool) -> None:
        states = {name: c.state for name, c in service.components.items()}
        await self._publish(service, service_status(self._with_written(service), states, wants_transformer,
                                                    now_rfc3339()))

    async def _publish(self, service: Service, status: dict[str, Any]) -> None:
        if status == service.written:
            return
        meta = service.obj["metadata"]
        await self.api.patch_status(ISVC, meta["namespace"], meta["name"], status)
        service.written = status
