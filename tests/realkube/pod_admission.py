"""Every pod template in a manifest, as the Pod a controller would make from it, through the real admission chain
(PodSecurity included) by a server-side dry-run create. There is no kubelet: admission is what is tested.

KServe makes the predictor's container from `predictor.model` and a ServingRuntime's image; here the container is
the model block's container fields with a placeholder image (PodSecurity does not look at images).
"""

from __future__ import annotations

import copy
import urllib.error
from typing import Any, Iterator

from llmops_operator.k8s.blocking import BlockingClient

POD_SPEC_FIELDS = frozenset({
    "activeDeadlineSeconds", "affinity", "automountServiceAccountToken", "containers", "dnsConfig", "dnsPolicy",
    "enableServiceLinks", "ephemeralContainers", "hostAliases", "hostIPC", "hostNetwork", "hostPID", "hostUsers",
    "hostname", "imagePullSecrets", "initContainers", "nodeName", "nodeSelector", "os", "overhead",
    "preemptionPolicy", "priority", "priorityClassName", "readinessGates", "resourceClaims", "restartPolicy",
    "runtimeClassName", "schedulerName", "schedulingGates", "securityContext", "serviceAccountName",
    "setHostnameAsFQDN", "shareProcessNamespace", "subdomain", "terminationGracePeriodSeconds", "tolerations",
    "topologySpreadConstraints", "volumes",
})
CONTAINER_FIELDS = frozenset({
    "args", "command", "env", "envFrom", "image", "imagePullPolicy", "lifecycle", "livenessProbe", "name", "ports",
    "readinessProbe", "resizePolicy", "resources", "restartPolicy", "securityContext", "startupProbe", "stdin",
    "stdinOnce", "terminationMessagePath", "terminationMessagePolicy", "tty", "volumeDevices", "volumeMounts",
    "workingDir",
})
KSERVE_RUNTIME_IMAGE = "kserve-runtime-of-the-model-format"


def _kserve_component(component: dict[str, Any]) -> dict[str, Any]:
    spec = {k: v for k, v in component.items() if k in POD_SPEC_FIELDS}
    model = component.get("model")
    if isinstance(model, dict):
        container = {k: v for k, v in model.items() if k in CONTAINER_FIELDS}
        container.setdefault("name", "kserve-container")
        container.setdefault("image", KSERVE_RUNTIME_IMAGE)
        spec["containers"] = [container, *spec.get("containers", [])]
    return {"metadata": {"labels": component.get("labels") or {}}, "spec": spec}


def pod_templates(obj: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, pod template) for each pod a controller would create from `obj`."""
    kind, spec = obj.get("kind"), obj.get("spec") or {}
    if kind in ("Job", "Deployment"):
        yield "spec.template", spec["template"]
    elif kind == "CronJob":
        yield "spec.jobTemplate.spec.template", spec["jobTemplate"]["spec"]["template"]
    elif kind == "RayJob":
        cluster = spec.get("rayClusterSpec") or {}
        if "headGroupSpec" in cluster:
            yield "spec.rayClusterSpec.headGroupSpec.template", cluster["headGroupSpec"]["template"]
        for i, group in enumerate(cluster.get("workerGroupSpecs") or []):
            yield f"spec.rayClusterSpec.workerGroupSpecs[{i}].template", group["template"]
        if "submitterPodTemplate" in spec:
            yield "spec.submitterPodTemplate", spec["submitterPodTemplate"]
    elif kind == "InferenceService":
        for component in ("predictor", "transformer"):
            if component in spec:
                yield f"spec.{component}", _kserve_component(spec[component])


def dry_run_pod(client: BlockingClient, namespace: str, name: str, template: dict[str, Any],
                keep_service_account: bool = True) -> str | None:
    """Create a Pod from `template` with dryRun=All; None when admitted, else the server's message.

    keep_service_account False: a template rendered offline names a ServiceAccount the operator has not made
    here; the ServiceAccount admission plugin would refuse it for that alone."""
    spec = copy.deepcopy(template.get("spec") or {})
    if not keep_service_account:
        spec.pop("serviceAccountName", None)
    labels = (template.get("metadata") or {}).get("labels") or {}
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name[:63].rstrip("-."), "labels": labels},
           "spec": spec}
    try:
        client.request("POST", f"/api/v1/namespaces/{namespace}/pods?dryRun=All", pod)
    except urllib.error.HTTPError as err:
        body = getattr(err, "body", {}) or {}
        return f"{err.code}: {body.get('message', err)}"
    return None
