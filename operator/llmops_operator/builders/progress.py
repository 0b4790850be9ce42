"""The progress channel of a training run (pure).

A job reports progress by patching one ConfigMap that the operator owns, through a ServiceAccount
whose Role may get and patch that ConfigMap and nothing else. The operator watches the ConfigMap
like any child and folds it into status, so status keeps a single writer (the operator) and the
job needs no route to the operator and no rights on the llmops.dev object itself.
"""

from __future__ import annotations

from typing import Any

from llmops_operator.api.v1alpha1.common import Resource
from llmops_operator.builders import labels
from llmops_operator.builders.naming import owned_name

PROGRESS_KEY = "progress.json"
PROGRESS_COMPONENT = "progress"


def progress_configmap_name(obj: Resource) -> str:
    return owned_name(obj, "progress")


def reporter_name(obj: Resource) -> str:
    return owned_name(obj, "reporter")


def build_progress_configmap(obj: Resource) -> dict[str, Any]:
    """No data: the job's reporter owns the data field (server-side apply keeps the two apart)."""
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": progress_configmap_name(obj), "namespace": obj.namespace,
                         "labels": labels.child_labels(obj, PROGRESS_COMPONENT)}}


def build_reporter_rbac(obj: Resource) -> list[dict[str, Any]]:
    """ServiceAccount, Role (get/patch on the progress ConfigMap only) and RoleBinding of the Ray pods."""
    name, meta_labels = reporter_name(obj), labels.child_labels(obj, "reporter")
    meta = {"name": name, "namespace": obj.namespace, "labels": meta_labels}
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": dict(meta)},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": dict(meta),
         "rules": [{"apiGroups": [""], "resources": ["configmaps"], "resourceNames": [progress_configmap_name(obj)],
                    "verbs": ["get", "patch"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": dict(meta),
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
         "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": obj.namespace}]},
    ]


def progress_target(obj: Resource) -> dict[str, str]:
    """Where the runtime reports, as it appears in the run config."""
    return {"namespace": obj.namespace, "configMap": progress_configmap_name(obj), "key": PROGRESS_KEY}
