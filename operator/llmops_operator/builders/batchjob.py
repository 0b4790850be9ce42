"""batch/v1 Job and CronJob manifests for runtimes that read one JSON config file (pure).

Shared by VectorIndex (ingest) and FeatureView (Feast apply and materialize). The pod runs
`python -m <module> --config <CONFIG_DIR>/<key>` from the operator's runtime image with the config
ConfigMap mounted at CONFIG_DIR and every claim a pvc://claim/... URI names mounted at
/mnt/pvc/<claim> (where core/uris.py looks for it). It runs as the object's reporter
ServiceAccount so it can patch its progress ConfigMap and nothing else.

Jobs carry no ttlSecondsAfterFinished: the operator applies every child on every pass, so a Job
deleted by its TTL would be created (and run) again. Finished Jobs go when their owner does, or
when a spec change renames them (the glue prunes children it no longer wants).
"""

from __future__ import annotations

from typing import Any, Iterable

from llmops_operator.api.v1alpha1.common import Resource
from llmops_operator.builders import labels
from llmops_operator.builders.naming import child_name
from llmops_operator.builders.pod_security import harden_pod
from llmops_operator.builders.progress import reporter_name

CONFIG_DIR = "/etc/llmops"
CONFIG_VOLUME = "config"
PVC_MOUNT_ROOT = "/mnt/pvc"
BACKOFF_LIMIT = 3
CRON_TIME_ZONE = "Etc/UTC"
RESOURCES = {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "4Gi"}}
"""Requests and limits of the runtime container: enough to embed with a small sentence-transformers model on CPU."""


def pvc_claims(uris: Iterable[str | None]) -> list[str]:
    """Every claim named by a pvc://claim/... URI, in order, once each."""
    claims: list[str] = []
    for uri in uris:
        if uri and uri.startswith("pvc://"):
            claim = uri.removeprefix("pvc://").split("/", 1)[0]
            if claim and claim not in claims:
                claims.append(claim)
    return claims


def template_labels(obj: Resource, component: str) -> dict[str, str]:
    """Labels of pod and CronJob job templates: the child labels without managed-by.

    What a CronJob or Job creates is owned by that CronJob or Job, not by the operator, so it must
    not match `children_selector` (the glue would prune it as an unwanted child).
    """
    return {k: v for k, v in labels.child_labels(obj, component).items() if k != labels.MANAGED_BY}


def pod_template(obj: Resource, component: str, *, image: str, module: str, config_map: str, config_key: str,
                 claims: list[str] = (), env: list[dict[str, Any]] = (),
                 extra_volumes: list[tuple[dict[str, Any], dict[str, Any]]] = ()) -> dict[str, Any]:
    """The pod that runs `python -m module --config CONFIG_DIR/config_key`; extra_volumes are (volume, mount) pairs."""
    volumes = [{"name": CONFIG_VOLUME, "configMap": {"name": config_map}}]
    mounts = [{"name": CONFIG_VOLUME, "mountPath": CONFIG_DIR, "readOnly": True}]
    for claim in claims:
        volume = child_name("pvc", claim)
        volumes.append({"name": volume, "persistentVolumeClaim": {"claimName": claim}})
        mounts.append({"name": volume, "mountPath": f"{PVC_MOUNT_ROOT}/{claim}"})
    for volume, mount in extra_volumes:
        volumes.append(volume)
        mounts.append(mount)
    container = {
        "name": component, "image": image,
        "command": ["python", "-m", module, "--config", f"{CONFIG_DIR}/{config_key}"],
        "env": list(env), "volumeMounts": mounts, "resources": RESOURCES,
    }
    if not container["env"]:
        del container["env"]
    pod = {"serviceAccountName": reporter_name(obj), "restartPolicy": "Never", "containers": [container],
           "volumes": volumes}
    return {"metadata": {"labels": template_labels(obj, component)},
            "spec": harden_pod(pod, calls_api=True)}  # the runtime reports to the progress ConfigMap


def build_job(obj: Resource, name: str, component: str, pod: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": name, "namespace": obj.namespace, "labels": labels.child_labels(obj, component)},
            "spec": {"backoffLimit": BACKOFF_LIMIT, "template": pod}}


def build_cronjob(obj: Resource, name: str, component: str, schedule: str, pod: dict[str, Any]) -> dict[str, Any]:
    """A CronJob that never runs two of its Jobs at once (concurrencyPolicy Forbid)."""
    return {"apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": {"name": name, "namespace": obj.namespace, "labels": labels.child_labels(obj, component)},
            "spec": {"schedule": schedule, "timeZone": CRON_TIME_ZONE, "concurrencyPolicy": "Forbid",
                     "successfulJobsHistoryLimit": 1, "failedJobsHistoryLimit": 3,
                     "jobTemplate": {"metadata": {"labels": template_labels(obj, component)},
                                     "spec": {"backoffLimit": BACKOFF_LIMIT, "template": pod}}}}


def config_map(obj: Resource, name: str, component: str, data: dict[str, str], digest: str) -> dict[str, Any]:
    """A content-addressed config ConfigMap (its name carries `digest`, so a running Job never sees it change)."""
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": obj.namespace,
                         "labels": {**labels.child_labels(obj, component), labels.CONTENT_HASH: digest}},
            "data": data}
