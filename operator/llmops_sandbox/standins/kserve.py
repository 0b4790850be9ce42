"""The KServe stand-in: each serving.kserve.io/v1beta1 InferenceService runs as local model-server processes.

The predictor (modelFormat huggingface, storageUri pvc://claim/path -> <workdir>/pvc/claim/path) runs as
`python -m llmops_operator.servers.predictor` on a free port; once it is ready, the transformer's container runs
as a local process the way the Job stand-in runs a container (ConfigMap volumes written out, mount paths in env
and args rewritten), with the arguments KServe appends: --model_name <service> --predictor_host 127.0.0.1:<port>
--http_port <free port>. Status is written as KServe writes it (see kserve_status.py); the URL is the
transformer's (else the predictor's) http://127.0.0.1:<port>, reachable from this machine.

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
import signal
import socket
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import aiohttp

from llmops_operator.builders.naming import short_hash
from llmops_operator.k8s.client import ApiClient, ApiError
from llmops_operator.k8s.resources import resource_for
from llmops_operator.core.uris import PVC_ROOT_ENV
from llmops_sandbox.standins.base import StandIn
from llmops_sandbox.standins.jobs import (
    CONFIGMAP, SECRET, ProcessPlan, UnrunnableJob, plan_process, referenced_sources,
)
from llmops_sandbox.standins.kserve_status import (
    FAILED, PREDICTOR, READY, STARTING, TRANSFORMER, ComponentState, is_stopped, service_status, stopped_status,
)
from llmops_operator.core.conditions import now_rfc3339

log = logging.getLogger("llmops.sandbox.kserve")

ISVC = resource_for("serving.kserve.io/v1beta1", "InferenceService")
PREDICTOR_MODULE = "llmops_operator.servers.predictor"
SUPPORTED_FORMATS = ("huggingface",)
PASS_SECONDS = 1.0
"""How often a service is re-examined (probes, mounted files) when no event arrives."""
STOP_GRACE_SECONDS = 5.0
HOST = "127.0.0.1"


class Unservable(ValueError):
    """A component the sandbox cannot run; `reason` is the condition reason KServe would give."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def model_directory(predictor: dict[str, Any], pvc_root: Path) -> Path:
    """Where the predictor's storageUri lives on this machine (pure)."""
    model = predictor.get("model") or {}
    fmt = (model.get("modelFormat") or {}).get("name")
    if fmt not in SUPPORTED_FORMATS:
        raise Unservable("NoSupportingRuntime", f"spec.predictor.model.modelFormat.name {fmt!r}: the sandbox serves "
                                                f"{', '.join(SUPPORTED_FORMATS)} models")
    uri = model.get("storageUri") or ""
    if not uri.startswith("pvc://"):
        raise Unservable("InvalidStorageUri", f"spec.predictor.model.storageUri {uri!r}: the sandbox serves pvc:// URIs")
    return pvc_root / uri.removeprefix("pvc://")


def predictor_plan(obj: dict[str, Any], pvc_root: Path, port: int, python: str = sys.executable) -> ProcessPlan:
    model_dir = model_directory(obj["spec"]["predictor"], pvc_root)
    argv = [python, "-m", PREDICTOR_MODULE, "--model_name", obj["metadata"]["name"], "--model_dir", str(model_dir),
            "--http_port", str(port), "--host", HOST]
    return ProcessPlan(argv=argv, env={PVC_ROOT_ENV: str(pvc_root)})


def transformer_pod(obj: dict[str, Any]) -> dict[str, Any]:
    """The transformer as the Job stand-in's planner reads a Job: metadata and a pod template."""
    transformer = obj["spec"]["transformer"]
    return {"metadata": obj["metadata"],
            "spec": {"template": {"spec": {"containers": transformer.get("containers") or [],
                                           "volumes": transformer.get("volumes") or []}}}}


def mount_hosts(pod: dict[str, Any], sources: dict[tuple[str, str], dict | None], root: Path,
                pvc_root: Path) -> dict[str, Path]:
    """Mount path -> host directory, as the Job planner places the volumes (it rewrites paths given as args)."""
    container = pod["spec"]["template"]["spec"]["containers"][0]
    paths = [m["mountPath"] for m in container.get("volumeMounts", [])]
    probe = {**pod, "spec": {"template": {"spec": {**pod["spec"]["template"]["spec"], "containers": [
        {**container, "command": ["true"], "args": paths, "env": []}]}}}}
    return dict(zip(paths, (Path(a) for a in plan_process(probe, sources, root, claims=pvc_root).argv[1:])))


def parent_mount_links(plan: ProcessPlan, hosts: dict[str, Path], tree: Path) -> dict[Path, Path]:
    """Make env values that name a parent of mount paths (LLMOPS_PROMPT_DIR=/etc/llmops/prompts/versions over
    .../versions/v1 and .../versions/v2) resolve: such a value points into `tree`, a copy of the container's
    directory layout in which each mount path is a link to its volume. Returns link -> target."""
    links: dict[Path, Path] = {}
    for name, value in plan.env.items():
        below = [m for m in hosts if value.startswith("/") and m.startswith(value.rstrip("/") + "/")]
        if below:
            plan.env[name] = str(tree / value.lstrip("/"))
            links.update({tree / m.lstrip("/"): hosts[m] for m in below})
    return links


@dataclass
class TransformerPlan:
    process: ProcessPlan
    links: dict[Path, Path]


def transformer_plan(obj: dict[str, Any], sources: dict[tuple[str, str], dict | None], root: Path, pvc_root: Path,
                     predictor_port: int, port: int, python: str = sys.executable) -> TransformerPlan:
    pod = transformer_pod(obj)
    if not pod["spec"]["template"]["spec"]["containers"]:
        raise Unservable("InvalidSpec", "spec.transformer.containers: at least one container is required")
    try:
        plan = plan_process(pod, sources, root, python=python, claims=pvc_root)
        links = parent_mount_links(plan, mount_hosts(pod, sources, root, pvc_root), root / "fs")
    except UnrunnableJob as err:
        raise Unservable("InvalidSpec", f"spec.transformer: {err}") from None
    plan.argv += ["--model_name", obj["metadata"]["name"], "--predictor_host", f"{HOST}:{predictor_port}",
                  "--http_port", str(port), "--enable_grpc", "false"]
    return TransformerPlan(plan, links)


def make_links(links: dict[Path, Path]) -> None:
    for link, target in links.items():
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.is_symlink():
            link.symlink_to(target, target_is_directory=True)


def write_files(files: dict[Path, bytes]) -> list[Path]:
    """Write what changed, each file replaced atomically as the kubelet swaps a ConfigMap volume; the paths written."""
    written = []
    for path, data in files.items():
        if path.is_file() and path.read_bytes() == data:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = path.with_name(f".{path.name}.tmp")
        staging.write_bytes(data)
        os.replace(staging, path)
        written.append(path)
    return written


def last_log_line(path: Path, limit: int = 300) -> str:
    try:
        lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return lines[-1][-limit:] if lines else ""


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
    """SIGTERM to the process group, SIGKILL after a grace period."""
    if process is None or process.returncode is not None:
        return
    for sig, wait in ((signal.SIGTERM, STOP_GRACE_SECONDS), (signal.SIGKILL, None)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            await asyncio.wait_for(process.wait(), timeout=wait)
            return
        except asyncio.TimeoutError:
            continue


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
            plan = predictor_plan(service.obj, self.pvc_root, port)
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
            process = await asyncio.create_subprocess_exec(
                *plan.argv, env={**os.environ, **plan.env}, stdout=out, stderr=asyncio.subprocess.STDOUT,
                cwd=log_path.parent, start_new_session=True)
        log.info("InferenceService %s: %s revision %d started on port %d (pid %d)",
                 service.obj["metadata"]["name"], name, revision, port, process.pid)
        state = ComponentState(name, STARTING, revision, url=f"http://{HOST}:{port}", since=now_rfc3339())
        return Component(spec_hash, state, port, log_path, process)

    async def _sources(self, obj: dict[str, Any]) -> dict[tuple[str, str], dict | None]:
        where = {"ConfigMap": CONFIGMAP, "Secret": SECRET}
        ns = obj["metadata"]["namespace"]
        return {(kind, name): await self.api.get_or_none(where[kind], ns, name)
                for kind, name in referenced_sources(transformer_pod(obj))}

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
