"""The KubeRay stand-in: each ray.io/v1 RayJob's entrypoint is submitted to a local Ray cluster.

Submission goes through the Ray Jobs API with the RayJob's runtimeEnvYAML and its jobId as the
submission id (so a restarted stand-in never submits twice), authenticated with the local head's token
as KubeRay's submitter is with the token it provisions for `authOptions.mode: token`. Status is written the way KubeRay
writes it: jobId, rayClusterName, dashboardURL, jobStatus, jobDeploymentStatus (Initializing,
Running, Complete, Failed, Suspended), reason, message, startTime, endTime.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from pathlib import Path
from typing import Any

import yaml

from llmops_operator.k8s.client import ApiClient
from llmops_operator.k8s.resources import resource_for
from llmops_sandbox import localray
from llmops_sandbox.standins.base import StandIn
from llmops_operator.core.conditions import now_rfc3339

log = logging.getLogger("llmops.sandbox.rayjobs")

RAYJOB = resource_for("ray.io/v1", "RayJob")
TERMINAL_DEPLOYMENT = ("Complete", "Failed")
POLL_SECONDS = 1.0
AGENT_WAIT_SECONDS = 120


def deployment_status(job_status: str) -> tuple[str, str]:
    """KubeRay's jobDeploymentStatus and reason for a Ray job status (rayjob_controller semantics)."""
    if job_status == "FAILED":
        return "Failed", "AppFailed"
    if job_status in ("SUCCEEDED", "STOPPED"):
        return "Complete", ""
    return "Running", ""


def runtime_env(rayjob: dict[str, Any], pvc_root: Path, kubeconfig: str | None = None) -> dict[str, Any]:
    """The RayJob's runtime env, with pvc:// URIs pointed at the sandbox's claim directories and,
    in place of the pod's service account, the sandbox's kubeconfig for progress reports."""
    env = yaml.safe_load(rayjob["spec"].get("runtimeEnvYAML") or "") or {}
    env.setdefault("env_vars", {})["LLMOPS_PVC_ROOT"] = str(pvc_root)
    if kubeconfig:
        env["env_vars"]["KUBECONFIG"] = kubeconfig
    return env


class RayJobRunner(StandIn):
    resource = RAYJOB

    def __init__(self, api: ApiClient, workdir: Path):
        super().__init__(api)
        self.workdir = workdir
        self.ray = localray.LocalRay(workdir)
        self._client: Any = None
        self._polling: dict[str, asyncio.Task] = {}

    async def handle(self, obj: dict[str, Any]) -> None:
        status = obj.get("status") or {}
        uid = obj["metadata"]["uid"]
        if status.get("jobDeploymentStatus") in TERMINAL_DEPLOYMENT or uid in self._polling:
            if obj["spec"].get("suspend") and uid in self._polling:
                await self._suspend(obj)
            return
        if obj["spec"].get("suspend"):
            if status.get("jobDeploymentStatus") != "Suspended":
                await self._write(obj, {"jobDeploymentStatus": "Suspended"})
            return
        if not localray.available():
            await self._write(obj, {"jobDeploymentStatus": "Failed", "reason": "SubmissionFailed",
                                    "message": "the sandbox runs RayJobs with Ray: "
                                               "pip install 'llmops-operator[train]'"})
            return
        await self._write(obj, {"jobDeploymentStatus": "Initializing", "jobId": obj["spec"]["jobId"],
                                "rayClusterName": f"{obj['metadata']['name']}-local",
                                "startTime": now_rfc3339()})
        self._polling[uid] = asyncio.create_task(self._run(obj))

    async def _run(self, obj: dict[str, Any]) -> None:
        job_id = obj["spec"]["jobId"]
        try:
            self.ray.launch()  # on this loop's thread, which outlives the head (see processes.py)
            client = await asyncio.to_thread(self._jobs_client)
            await asyncio.to_thread(self._submit, client, obj)
            await self._write(obj, {"dashboardURL": self.ray.dashboard_url})
            while True:
                info = await asyncio.to_thread(client.get_job_info, job_id)
                job_status = str(info.status.value if hasattr(info.status, "value") else info.status)
                deployment, reason = deployment_status(job_status)
                patch = {"jobStatus": job_status, "jobDeploymentStatus": deployment, "message": info.message or ""}
                if reason:
                    patch["reason"] = reason
                if deployment in TERMINAL_DEPLOYMENT:
                    patch["endTime"] = now_rfc3339()
                await self._write(obj, patch)
                if deployment in TERMINAL_DEPLOYMENT:
                    return
                await asyncio.sleep(POLL_SECONDS)
        except asyncio.CancelledError:
            raise
        except Exception as err:  # a stand-in reports, like KubeRay, instead of crashing
            log.exception("RayJob %s failed to run", obj["metadata"]["name"])
            await self._write(obj, {"jobDeploymentStatus": "Failed", "reason": "SubmissionFailed",
                                    "message": f"{type(err).__name__}: {err}", "endTime": now_rfc3339()})

    def _jobs_client(self) -> Any:
        if self._client is None:
            from ray.job_submission import JobSubmissionClient

            self._client = JobSubmissionClient(self.ray.wait_ready(), headers=self.ray.headers)
        return self._client

    def _submit(self, client: Any, obj: dict[str, Any]) -> None:
        job_id = obj["spec"]["jobId"]
        try:
            client.get_job_info(job_id)
            return  # submitted before this stand-in restarted
        except RuntimeError:
            pass
        deadline = time.monotonic() + AGENT_WAIT_SECONDS
        while True:
            try:
                # The driver needs no CPU of its own; on a small machine it would take one the workers need.
                client.submit_job(entrypoint=obj["spec"]["entrypoint"], submission_id=job_id,
                                  runtime_env=runtime_env(obj, self.workdir / "pvc", os.environ.get("KUBECONFIG")),
                                  entrypoint_num_cpus=0, metadata={"rayjob": obj["metadata"]["name"]})
                return
            except RuntimeError as err:
                # A freshly started head's job agent may not be up yet; KubeRay's submitter retries too.
                if "No available agent" not in str(err) or time.monotonic() > deadline or self.ray.stopping.is_set():
                    raise
                self.ray.stopping.wait(2)

    async def _suspend(self, obj: dict[str, Any]) -> None:
        task = self._polling.pop(obj["metadata"]["uid"])
        task.cancel()
        if self._client is not None:
            await asyncio.to_thread(self._client.stop_job, obj["spec"]["jobId"])
        await self._write(obj, {"jobDeploymentStatus": "Suspended", "jobStatus": "STOPPED"})

    async def _write(self, obj: dict[str, Any], patch: dict[str, Any]) -> None:
        meta = obj["metadata"]
        await self.api.patch_status(RAYJOB, meta["namespace"], meta["name"], patch)

    async def forget(self, obj: dict[str, Any]) -> None:
        task = self._polling.pop(obj["metadata"]["uid"], None)
        if task:
            task.cancel()
            if self._client is not None:
                await asyncio.to_thread(self._client.stop_job, obj["spec"]["jobId"])

    async def close(self) -> None:
        for task in self._polling.values():
            task.cancel()
        self._polling.clear()
        await asyncio.to_thread(self.ray.stop)
