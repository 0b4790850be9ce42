"""The Job controller stand-in: each batch/v1 Job's container runs as a local process.

The container's command and args run with its env; ConfigMap and Secret volumes are written out
as files, emptyDir and PVC volumes become directories under the sandbox's work directory, and
every mount path that appears in the args or env is rewritten to where it lives on this machine.
Job status is written the way the Job controller writes it (startTime, active, succeeded, failed,
completionTime, Complete/Failed conditions). The image is not pulled: `python` runs this
interpreter, which has the operator's runtimes installed.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmops_operator.k8s.client import ApiClient
from llmops_operator.k8s.resources import resource_for
from llmops_operator.core.uris import PVC_ROOT_ENV
from llmops_sandbox import processes
from llmops_sandbox.standins.base import StandIn
from llmops_operator.core.conditions import now_rfc3339

log = logging.getLogger("llmops.sandbox.jobs")

JOB = resource_for("batch/v1", "Job")
CONFIGMAP = resource_for("v1", "ConfigMap")
SECRET = resource_for("v1", "Secret")
STOP_GRACE_SECONDS = 5.0
"""How long a Job's process has to end after SIGTERM when the sandbox ends (a deadline or a deletion kills it)."""


class UnrunnableJob(ValueError):
    """The Job cannot run here (no command, a volume kind the sandbox does not provide)."""


@dataclass
class ProcessPlan:
    argv: list[str]
    env: dict[str, str]
    files: dict[Path, bytes] = field(default_factory=dict)
    directories: list[Path] = field(default_factory=list)


def _source_data(source: dict[str, Any] | None, secret: bool) -> dict[str, bytes]:
    if not source:
        return {}
    text = {k: v.encode() for k, v in (source.get("data") or {}).items()} if not secret else \
        {k: base64.b64decode(v) for k, v in (source.get("data") or {}).items()}
    text.update({k: v.encode() for k, v in (source.get("stringData") or {}).items()})
    if not secret:
        text.update({k: base64.b64decode(v) for k, v in (source.get("binaryData") or {}).items()})
    return text


def _volume_dirs(volumes: list[dict[str, Any]], sources: dict[tuple[str, str], dict | None], root: Path,
                 claims: Path) -> tuple[dict[str, Path], dict[Path, bytes], list[Path]]:
    """Volume name -> host directory, plus the files and directories to create."""
    dirs: dict[str, Path] = {}
    files: dict[Path, bytes] = {}
    made: list[Path] = []
    for volume in volumes:
        name = volume["name"]
        if "persistentVolumeClaim" in volume:
            dirs[name] = claims / volume["persistentVolumeClaim"]["claimName"]
        elif "emptyDir" in volume:
            dirs[name] = root / "volumes" / name
        elif "configMap" in volume or "secret" in volume:
            secret = "secret" in volume
            ref = volume["secret"]["secretName"] if secret else volume["configMap"]["name"]
            dirs[name] = root / "volumes" / name
            data = _source_data(sources.get(("Secret" if secret else "ConfigMap", ref)), secret)
            items = (volume["secret"] if secret else volume["configMap"]).get("items")
            paths = {i["key"]: i["path"] for i in items} if items else {k: k for k in data}
            files.update({dirs[name] / path: data[key] for key, path in paths.items() if key in data})
        else:
            raise UnrunnableJob(f"volume {name!r}: only configMap, secret, emptyDir and persistentVolumeClaim run in the sandbox")
        made.append(dirs[name])
    return dirs, files, made


def _rewrite(value: str, mounts: list[tuple[str, Path]]) -> str:
    for mount_path, host in mounts:
        if value == mount_path or value.startswith(mount_path.rstrip("/") + "/"):
            return str(host) + value[len(mount_path.rstrip("/")):]
        value = value.replace(f"={mount_path.rstrip('/')}/", f"={host}/")
    return value


def _env_value(item: dict[str, Any], sources: dict[tuple[str, str], dict | None], job: dict[str, Any]) -> str | None:
    if "value" in item:
        return item["value"]
    source = item.get("valueFrom", {})
    for key, kind in (("configMapKeyRef", "ConfigMap"), ("secretKeyRef", "Secret")):
        if key in source:
            ref = source[key]
            data = _source_data(sources.get((kind, ref["name"])), kind == "Secret")
            if ref["key"] not in data and not ref.get("optional"):
                raise UnrunnableJob(f"env {item['name']}: {kind} {ref['name']} has no key {ref['key']!r}")
            return data[ref["key"]].decode() if ref["key"] in data else None
    if "fieldRef" in source:
        return {"metadata.name": job["metadata"]["name"], "metadata.namespace": job["metadata"]["namespace"]}.get(
            source["fieldRef"]["fieldPath"], "")
    return None


def referenced_sources(job: dict[str, Any]) -> set[tuple[str, str]]:
    """(kind, name) of every ConfigMap and Secret the Job's pod reads."""
    pod = job["spec"]["template"]["spec"]
    refs = set()
    for volume in pod.get("volumes", []):
        if "configMap" in volume:
            refs.add(("ConfigMap", volume["configMap"]["name"]))
        if "secret" in volume:
            refs.add(("Secret", volume["secret"]["secretName"]))
    for container in pod.get("containers", []):
        for item in container.get("env", []):
            source = item.get("valueFrom", {})
            if "configMapKeyRef" in source:
                refs.add(("ConfigMap", source["configMapKeyRef"]["name"]))
            if "secretKeyRef" in source:
                refs.add(("Secret", source["secretKeyRef"]["name"]))
    return refs


def plan_process(job: dict[str, Any], sources: dict[tuple[str, str], dict | None], root: Path,
                 python: str = sys.executable, claims: Path | None = None) -> ProcessPlan:
    """How the Job's first container runs on this machine (pure).

    `root` holds the Job's own volumes; claims are directories under `claims` (default root/pvc),
    shared by every Job that mounts them, as a PersistentVolumeClaim outlives its pods.
    """
    claims = claims or root / "pvc"
    pod = job["spec"]["template"]["spec"]
    container = pod["containers"][0]
    argv = [*container.get("command", []), *container.get("args", [])]
    if not argv:
        raise UnrunnableJob("the container has no command: the sandbox cannot run an image's entrypoint")
    if argv[0] in ("python", "python3"):
        argv[0] = python
    dirs, files, made = _volume_dirs(pod.get("volumes", []), sources, root, claims)
    mounts = sorted(((m["mountPath"], dirs[m["name"]] / m.get("subPath", "")) for m in container.get("volumeMounts", [])),
                    key=lambda m: -len(m[0]))
    # pvc:// URIs inside config files resolve under the same root the claims are mounted from.
    env = {PVC_ROOT_ENV: str(claims)}
    for item in container.get("env", []):
        value = _env_value(item, sources, job)
        if value is not None:
            env[item["name"]] = _rewrite(value, mounts)
    return ProcessPlan(argv=[_rewrite(a, mounts) for a in argv], env=env, files=files, directories=made)


def _condition(type_: str, reason: str, message: str, now: str) -> dict[str, Any]:
    return {"type": type_, "status": "True", "reason": reason, "message": message,
            "lastProbeTime": now, "lastTransitionTime": now}


def finished(job: dict[str, Any]) -> bool:
    return any(c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
               for c in (job.get("status") or {}).get("conditions", []))


def succeeded_status(start: str, failures: int, now: str) -> dict[str, Any]:
    return {"startTime": start, "active": 0, "ready": 0, "succeeded": 1, "failed": failures, "completionTime": now,
            "conditions": [_condition("SuccessCriteriaMet", "CompletionsReached", "Reached expected number of succeeded pods", now),
                           _condition("Complete", "CompletionsReached", "Reached expected number of succeeded pods", now)]}


def failed_status(start: str, failures: int, reason: str, message: str, now: str) -> dict[str, Any]:
    return {"startTime": start, "active": 0, "ready": 0, "succeeded": 0, "failed": failures,
            "conditions": [_condition("FailureTarget", reason, message, now), _condition("Failed", reason, message, now)]}


class JobRunner(StandIn):
    resource = JOB

    def __init__(self, api: ApiClient, workdir: Path):
        super().__init__(api)
        self.workdir = workdir
        self._running: dict[str, asyncio.Task] = {}

    async def handle(self, job: dict[str, Any]) -> None:
        uid = job["metadata"]["uid"]
        if finished(job) or uid in self._running or job["spec"].get("suspend"):
            return
        self._running[uid] = asyncio.create_task(self._run(job), name=f"job-{job['metadata']['name']}")

    async def forget(self, job: dict[str, Any]) -> None:
        task = self._running.pop(job["metadata"]["uid"], None)
        if task:
            task.cancel()

    async def close(self) -> None:
        for task in self._running.values():
            task.cancel()
        await asyncio.gather(*self._running.values(), return_exceptions=True)
        self._running.clear()

    async def _sources(self, job: dict[str, Any]) -> dict[tuple[str, str], dict | None]:
        where = {"ConfigMap": CONFIGMAP, "Secret": SECRET}
        ns = job["metadata"]["namespace"]
        return {(kind, name): await self.api.get_or_none(where[kind], ns, name) for kind, name in referenced_sources(job)}

    async def _run(self, job: dict[str, Any]) -> None:
        meta = job["metadata"]
        root = self.workdir / "jobs" / meta["namespace"] / meta["name"]
        start = now_rfc3339()
        await self._status(job, {"startTime": start, "active": 1, "ready": 1})
        try:
            plan = plan_process(job, await self._sources(job), root, claims=self.workdir / "pvc")
        except UnrunnableJob as err:
            await self._status(job, failed_status(start, 1, "Unrunnable", str(err), now_rfc3339()))
            return
        limit = job["spec"].get("backoffLimit", 6)
        deadline = job["spec"].get("activeDeadlineSeconds")
        failures = 0
        while True:
            code = await self._attempt(plan, root, failures, deadline)
            if code == 0:
                await self._status(job, succeeded_status(start, failures, now_rfc3339()))
                return
            failures += 1
            if code is None or failures > limit:
                reason, message = (("DeadlineExceeded", "Job was active longer than specified deadline") if code is None
                                   else ("BackoffLimitExceeded", "Job has reached the specified backoff limit"))
                await self._status(job, failed_status(start, failures, reason, message, now_rfc3339()))
                return
            await self._status(job, {"startTime": start, "active": 1, "failed": failures})

    async def _attempt(self, plan: ProcessPlan, root: Path, attempt: int, deadline: float | None) -> int | None:
        """Run the process once; its exit code, or None when it ran past the deadline."""
        for directory in plan.directories:
            directory.mkdir(parents=True, exist_ok=True)
        for path, data in plan.files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        log_path = root / f"attempt-{attempt}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("wb") as out:
            process = await processes.spawn(plan.argv, STOP_GRACE_SECONDS, env={**os.environ, **plan.env},
                                            stdout=out, stderr=asyncio.subprocess.STDOUT, cwd=root)
            try:
                return await asyncio.wait_for(process.wait(), timeout=deadline)
            except asyncio.TimeoutError:
                await processes.kill(process)
                return None
            except asyncio.CancelledError:
                await asyncio.shield(processes.kill(process))
                raise

    async def _status(self, job: dict[str, Any], status: dict[str, Any]) -> None:
        meta = job["metadata"]
        await self.api.patch_status(JOB, meta["namespace"], meta["name"], status)
