"""What the real API server does to built-in kinds and CRD objects, as far as the emulator mirrors it: which
kinds carry `metadata.generation`, the required fields it validates (with its messages), and a CRD's status."""

from __future__ import annotations

import copy
from typing import Any, Callable

from .schema import cause

# Kinds whose registry strategy sets metadata.generation; ConfigMaps, Secrets, Services, Namespaces... have none.
GENERATION = {("", "pods"), ("", "replicationcontrollers"), ("batch", "jobs"), ("batch", "cronjobs"),
              ("apps", "deployments"), ("apps", "replicasets"), ("apps", "statefulsets"), ("apps", "daemonsets"),
              ("policy", "poddisruptionbudgets"), ("networking.k8s.io", "ingresses"),
              ("networking.k8s.io", "networkpolicies"), ("autoscaling", "horizontalpodautoscalers"),
              ("apiextensions.k8s.io", "customresourcedefinitions")}
RESTART_POLICIES = 'Required value: valid values: "OnFailure", "Never"'


def has_generation(key: tuple[str, str], custom: bool) -> bool:
    return custom or key in GENERATION


def _required(path: str) -> dict[str, Any]:
    return cause("FieldValueRequired", path, "Required value")


def _pod_spec(spec: Any, path: str, job: bool = False) -> list[dict[str, Any]]:
    spec = spec if isinstance(spec, dict) else {}
    causes = [] if spec.get("containers") else [_required(f"{path}.containers")]
    for i, container in enumerate(spec.get("containers") or []):
        for field in ("name", "image"):
            if not (container or {}).get(field):
                causes.append(_required(f"{path}.containers[{i}].{field}"))
    if job and spec.get("restartPolicy") not in ("OnFailure", "Never"):
        causes.append(cause("FieldValueRequired", f"{path}.restartPolicy", RESTART_POLICIES))
    return causes


def _template_spec(obj: dict[str, Any], *keys: str) -> Any:
    value: Any = obj
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _pod(obj: dict[str, Any]) -> list[dict[str, Any]]:
    return _pod_spec(obj.get("spec"), "spec")


def _job(obj: dict[str, Any]) -> list[dict[str, Any]]:
    return _pod_spec(_template_spec(obj, "spec", "template", "spec"), "spec.template.spec", job=True)


def _cronjob(obj: dict[str, Any]) -> list[dict[str, Any]]:
    causes = [] if _template_spec(obj, "spec", "schedule") else [_required("spec.schedule")]
    pod = _template_spec(obj, "spec", "jobTemplate", "spec", "template", "spec")
    return causes + _pod_spec(pod, "spec.jobTemplate.spec.template.spec", job=True)


def _deployment(obj: dict[str, Any]) -> list[dict[str, Any]]:
    selector = _template_spec(obj, "spec", "selector", "matchLabels")
    causes = [] if _template_spec(obj, "spec", "selector") else [_required("spec.selector")]
    labels = _template_spec(obj, "spec", "template", "metadata", "labels") or {}
    if not selector or any(labels.get(k) != v for k, v in selector.items()):
        shown = "null" if not labels else "{" + ", ".join(f'"{k}":"{v}"' for k, v in labels.items()) + "}"
        causes.append(cause("FieldValueInvalid", "spec.template.metadata.labels",
                            f"Invalid value: {shown}: `selector` does not match template `labels`"))
    return causes + _pod_spec(_template_spec(obj, "spec", "template", "spec"), "spec.template.spec")


def _rolebinding(obj: dict[str, Any]) -> list[dict[str, Any]]:
    ref = obj.get("roleRef") if isinstance(obj.get("roleRef"), dict) else {}
    causes = []
    if ref.get("kind") not in ("Role", "ClusterRole"):
        causes.append(cause("FieldValueNotSupported", "roleRef.kind",
                            f'Unsupported value: "{ref.get("kind", "")}": supported values: "Role", "ClusterRole"'))
    if not ref.get("name"):
        causes.append(_required("roleRef.name"))
    return causes


def _event(obj: dict[str, Any]) -> list[dict[str, Any]]:
    about = obj.get("involvedObject") if isinstance(obj.get("involvedObject"), dict) else {}
    namespace = obj["metadata"].get("namespace")
    if about.get("namespace", "") != namespace:
        return [cause("FieldValueInvalid", "involvedObject.namespace",
                      f'Invalid value: "{about.get("namespace", "")}": does not match event.namespace')]
    return []


VALIDATORS: dict[tuple[str, str], Callable[[dict[str, Any]], list[dict[str, Any]]]] = {
    ("", "pods"): _pod, ("batch", "jobs"): _job, ("batch", "cronjobs"): _cronjob,
    ("apps", "deployments"): _deployment, ("rbac.authorization.k8s.io", "rolebindings"): _rolebinding,
    ("", "events"): _event,
}


def validate(key: tuple[str, str], obj: dict[str, Any]) -> list[dict[str, Any]]:
    check = VALIDATORS.get(key)
    return check(obj) if check else []


def validate_crd(crd: dict[str, Any]) -> list[dict]:
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    causes = [] if spec.get("group") else [_required("spec.group")]
    causes += [_required(f"spec.names.{field}") for field in ("plural", "kind") if not names.get(field)]
    if not spec.get("versions"):
        causes.append(_required("spec.versions"))
    name = crd["metadata"].get("name")
    if not causes and name != f"{names['plural']}.{spec['group']}":
        causes.append(cause("FieldValueInvalid", "metadata.name",
                            f'Invalid value: "{name}": must be spec.names.plural+"."+spec.group'))
    return causes


def crd_status(crd: dict[str, Any], stamp: str, old_status: dict[str, Any] | None = None) -> dict[str, Any]:
    previous = {c["type"]: c for c in (old_status or {}).get("conditions", [])}
    conditions = []
    for ctype, reason, message in (
            ("NamesAccepted", "NoConflicts", "no conflicts found"),
            ("Established", "InitialNamesAccepted", "the initial names have been accepted")):
        conditions.append(previous.get(ctype) or {"type": ctype, "status": "True", "reason": reason,
                                                  "message": message, "lastTransitionTime": stamp})
    spec = crd.get("spec", {})
    stored = [v["name"] for v in spec.get("versions", []) if v.get("storage")]
    return {"conditions": conditions, "acceptedNames": copy.deepcopy(spec.get("names", {})),
            "storedVersions": sorted(set(stored) | set((old_status or {}).get("storedVersions", [])))}
