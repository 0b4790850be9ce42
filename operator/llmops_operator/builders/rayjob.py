"""KubeRay `ray.io/v1` RayJob manifests for TrainingJob and FineTune (pure).

Field names follow KubeRay's RayJob CRD (ray-operator/apis/ray/v1). The RayJob's name is the run's
identity: a hash of the spec as the user wrote it and of the explicit inputs the caller resolved
(a base model's URI, a FeatureView's definition). Operator defaults (the runtime image) and what a
reference compiles to (a Guardrail's policy) stay out of it, so an operator upgrade or a Guardrail
edit never starts a finished run again. A spec change starts a new RayJob (and the old one is
pruned) while suspend, budget or deadline edits patch the running one in place. A budget whose action
holds the job (scoring/budget.py job_hold) renders as `suspend: true`: KubeRay stops the Ray job and
deletes its cluster.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import yaml

from llmops_operator.api.v1alpha1.finetune import FineTune
from llmops_operator.api.v1alpha1.trainingjob import TrainingJob
from llmops_operator.api.v1alpha1.units import parse_duration
from llmops_operator.builders import labels
from llmops_operator.builders.naming import child_name, owned_name, short_hash
from llmops_operator.builders.pod_security import harden_pod
from llmops_operator.builders.progress import reporter_name
from llmops_operator.builders.runconfig import RUN_CONFIG_ENV
from llmops_operator.core.pricing import PriceCatalog
from llmops_operator.scoring.budget import job_hold, recorded_spend
from llmops_operator.scoring.cost import gpu_price

RAY_API_VERSION = "ray.io/v1"
ENTRYPOINT = "python -m llmops_operator.entrypoints.train"
DEFAULT_TTL_SECONDS = 600
GPU_RESOURCE = "nvidia.com/gpu"
PVC_MOUNT_ROOT = "/mnt/pvc"
"""pvc://claim/path URIs are mounted at /mnt/pvc/<claim> in every Ray pod; the runtime maps them back."""
RAYJOB_COMPONENT = "rayjob"
TOKEN_AUTH_SINCE = (2, 52)
NAME_LENGTH = 47
"""KubeRay derives RayCluster, Service and pod names from the RayJob name; leave them room."""

Job = TrainingJob | FineTune


PATCHED_IN_PLACE = {"suspend", "budget", "max_duration", "pending_timeout", "ttl_seconds_after_finished", "retries"}
"""Spec fields that change a run without making it another run: they are patched into the RayJob (retries say
how to recover a run, not what it runs, so a Succeeded run never re-runs for a retries edit)."""


def run_hash(obj: Job, inputs: dict[str, Any]) -> str:
    """The run's identity: the spec's fields as written (defaults and PATCHED_IN_PLACE left out) and `inputs`."""
    spec = obj.spec.model_dump(mode="json", exclude_unset=True, exclude=PATCHED_IN_PLACE)
    return short_hash({"spec": spec, "inputs": inputs})


def rayjob_name(obj: Job, digest: str) -> str:
    return owned_name(obj, digest, max_length=NAME_LENGTH)


def submission_id(obj: Job, name: str) -> str:
    """The Ray job submission id: deterministic, so a retried reconcile can never submit the run twice."""
    return f"{obj.namespace}-{name}"


def build_rayjob(obj: Job, run_config: dict[str, Any], *, image: str, ray_version: str,
                 catalog: PriceCatalog, extra_volumes: list[dict[str, Any]] = (),
                 inputs: dict[str, Any] | None = None) -> dict[str, Any]:
    """`inputs`: the explicit inputs the caller resolved from references (see run_hash)."""
    spec = obj.spec
    name = rayjob_name(obj, run_hash(obj, inputs or {}))
    meta_labels = labels.child_labels(obj, RAYJOB_COMPONENT)
    scheduling = spec.scheduling
    if scheduling and scheduling.queue_name:
        meta_labels[labels.KUEUE_QUEUE] = scheduling.queue_name
    body: dict[str, Any] = {
        "entrypoint": ENTRYPOINT,
        "jobId": submission_id(obj, name),
        "submissionMode": "K8sJobMode",
        "runtimeEnvYAML": runtime_env_yaml(obj, run_config),
        "activeDeadlineSeconds": int(parse_duration(spec.max_duration)),
        "preRunningDeadlineSeconds": int(parse_duration(spec.pending_timeout)),
        "backoffLimit": spec.retries.limit if spec.retries else 0,
        "suspend": spec.suspend or job_hold(spec.budget, recorded_spend(obj.status)) is not None,
    }
    body["submitterPodTemplate"] = submitter_template(obj, image)
    if scheduling and scheduling.cluster_selector:
        body["clusterSelector"] = dict(scheduling.cluster_selector.match_labels)
    else:
        body["shutdownAfterJobFinishes"] = True
        body["ttlSecondsAfterFinished"] = (
            spec.ttl_seconds_after_finished if spec.ttl_seconds_after_finished is not None else DEFAULT_TTL_SECONDS)
        body["rayClusterSpec"] = ray_cluster_spec(obj, image=image, ray_version=ray_version, catalog=catalog,
                                                  extra_volumes=list(extra_volumes))
    return {
        "apiVersion": RAY_API_VERSION, "kind": "RayJob",
        "metadata": {"name": name, "namespace": obj.namespace, "labels": meta_labels,
                     "annotations": {labels.GENERATION: str(obj.metadata.generation or 0)}},
        "spec": body,
    }


def submitter_template(obj: Job, image: str) -> dict[str, Any]:
    """The pod KubeRay runs `ray job submit` in (K8sJobMode), restricted like ours: KubeRay's default is not.

    No command: KubeRay fills in the submit command and the dashboard address."""
    container = {"name": "ray-job-submitter", "image": image,
                 "resources": {"requests": {"cpu": "200m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}}}
    pod = harden_pod({"restartPolicy": "Never", "containers": [container]}, calls_api=False)
    return {"metadata": {"labels": labels.child_labels(obj, "ray-submitter")}, "spec": pod}


def token_auth(ray_version: str) -> bool:
    """Whether the Ray version has token authentication (Ray 2.52+; KubeRay 1.5.1+ provisions the token)."""
    try:
        major, minor = (int(part) for part in ray_version.split(".")[:2])
    except ValueError:
        return False
    return (major, minor) >= TOKEN_AUTH_SINCE


def runtime_env_yaml(obj: Job, run_config: dict[str, Any]) -> str:
    env = {RUN_CONFIG_ENV: json.dumps(run_config, sort_keys=True, separators=(",", ":"))}
    if obj.spec.resources.gpus_per_worker == 0:
        env["DS_ACCELERATOR"] = "cpu"  # DeepSpeed otherwise probes for CUDA and fails on CPU nodes
    return yaml.safe_dump({"env_vars": env}, sort_keys=True)


def ray_cluster_spec(obj: Job, *, image: str, ray_version: str, catalog: PriceCatalog,
                     extra_volumes: list[dict[str, Any]]) -> dict[str, Any]:
    res = obj.spec.resources
    volumes, mounts = pod_volumes(obj, extra_volumes)
    head = _container("ray-head", image, _resources(res.head_cpu, res.head_memory), mounts,
                      ports=[("gcs-server", 6379), ("dashboard", 8265), ("client", 10001)])
    worker = _container("ray-worker", image, _resources(res.cpu, res.memory, res.gpus_per_worker), mounts)
    cluster: dict[str, Any] = {"rayVersion": ray_version}
    if token_auth(ray_version):
        # KubeRay creates a Secret with a random token and gives it to every Ray container and the submitter.
        cluster["authOptions"] = {"mode": "token"}
    return {
        **cluster,
        "headGroupSpec": {
            # The head only runs the driver; num-cpus 0 keeps training tasks on the workers.
            "rayStartParams": {"dashboard-host": "0.0.0.0", "num-cpus": "0"},
            "template": _pod_template(obj, "ray-head", head, volumes, catalog, gpus=False),
        },
        "workerGroupSpecs": [{
            "groupName": "workers",
            "replicas": res.workers, "minReplicas": res.workers, "maxReplicas": res.workers,
            "rayStartParams": {},
            "template": _pod_template(obj, "ray-worker", worker, volumes, catalog, gpus=res.gpus_per_worker > 0),
        }],
    }


def _resources(cpu: str, memory: str, gpus: int = 0) -> dict[str, Any]:
    amounts = {"cpu": str(cpu), "memory": str(memory)}
    if gpus:
        amounts[GPU_RESOURCE] = str(gpus)
    return {"requests": dict(amounts), "limits": dict(amounts)}


def _container(name: str, image: str, resources: dict[str, Any], mounts: list[dict[str, Any]],
               ports: list[tuple[str, int]] = ()) -> dict[str, Any]:
    container: dict[str, Any] = {"name": name, "image": image, "resources": resources,
                                 "volumeMounts": copy.deepcopy(mounts)}
    if ports:
        container["ports"] = [{"name": port_name, "containerPort": port} for port_name, port in ports]
    return container


def _pod_template(obj: Job, component: str, container: dict[str, Any], volumes: list[dict[str, Any]],
                  catalog: PriceCatalog, gpus: bool) -> dict[str, Any]:
    pod: dict[str, Any] = {"serviceAccountName": reporter_name(obj), "containers": [container],
                           "volumes": copy.deepcopy(volumes)}
    harden_pod(pod, calls_api=True)  # the driver (head) and rank 0 (a worker) report progress
    node_selector, tolerations = _placement(obj, catalog, gpus)
    if node_selector:
        pod["nodeSelector"] = node_selector
    if tolerations:
        pod["tolerations"] = tolerations
    scheduling = obj.spec.scheduling
    if scheduling and scheduling.priority_class_name:
        pod["priorityClassName"] = scheduling.priority_class_name
    return {"metadata": {"labels": labels.child_labels(obj, component)}, "spec": pod}


def _placement(obj: Job, catalog: PriceCatalog, gpus: bool) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """GPU nodes come from the catalog entry of gpuType; the user's scheduling block is merged over it."""
    node_selector: dict[str, str] = {}
    tolerations: list[dict[str, Any]] = []
    if gpus:
        price = gpu_price(catalog, obj.spec.resources.gpu_type)
        node_selector.update(price.node_selector)
        tolerations.extend(price.tolerations)
    scheduling = obj.spec.scheduling
    if scheduling:
        node_selector.update(scheduling.node_selector or {})
        tolerations.extend(scheduling.tolerations or [])
    return node_selector, tolerations


def pvc_claims(obj: Job) -> list[str]:
    """Every PersistentVolumeClaim named by a pvc://claim/... URI in the spec, in order, once each."""
    claims: list[str] = []
    for uri in _uris(obj.spec.model_dump(mode="json")):
        if uri.startswith("pvc://"):
            claim = uri.removeprefix("pvc://").split("/", 1)[0]
            if claim and claim not in claims:
                claims.append(claim)
    return claims


def _uris(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [u for v in value.values() for u in _uris(v)]
    if isinstance(value, list):
        return [u for v in value for u in _uris(v)]
    return [value] if isinstance(value, str) and "://" in value else []


def claim_volume(claim: str) -> dict[str, Any]:
    """A PersistentVolumeClaim as a pod volume and its mount at PVC_MOUNT_ROOT/<claim>, where pvc:// URIs resolve."""
    volume = child_name("pvc", claim)
    return {"volume": {"name": volume, "persistentVolumeClaim": {"claimName": claim}},
            "mount": {"name": volume, "mountPath": f"{PVC_MOUNT_ROOT}/{claim}"}}


def pod_volumes(obj: Job, extra: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Volumes and mounts of every Ray pod: shared memory for collectives, the claims the URIs name, extras."""
    volumes = [{"name": "dshm", "emptyDir": {"medium": "Memory"}}]
    mounts = [{"name": "dshm", "mountPath": "/dev/shm"}]
    for volume in [*map(claim_volume, pvc_claims(obj)), *extra]:
        volumes.append(volume["volume"])
        mounts.append(volume["mount"])
    return volumes, mounts
