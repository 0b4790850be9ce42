"""NetworkPolicies that keep one tenant's pods away from another's (pure).

- A run's Ray pods (head and workers) take traffic only from the pods of the same object (its head,
  workers and job submitter) and from the control-plane namespaces (KubeRay's operator reads the head's
  dashboard; the llmops operator's own). Anyone else in the cluster reaching a Ray head could submit code.
- A served model's predictor takes traffic only from its guardrail transformer (and the control-plane
  namespaces, where a serverless ingress or activator forwards it), so no caller skips the guardrails.

Policies restrict ingress only; they take effect where the cluster's network plugin enforces them.
"""

from __future__ import annotations

from typing import Any

from llmops_operator.api.v1alpha1.common import Resource
from llmops_operator.builders import labels
from llmops_operator.builders.naming import owned_name

NAMESPACE_NAME = "kubernetes.io/metadata.name"
KSERVE_SERVICE = "serving.kserve.io/inferenceservice"
KSERVE_COMPONENT = "component"
"""Labels KServe puts on every pod of a component: the InferenceService's name and predictor/transformer."""
RAY_COMPONENTS = ("ray-head", "ray-worker")


def _peers(pod_selector: dict[str, Any], namespaces: list[str]) -> list[dict[str, Any]]:
    peers: list[dict[str, Any]] = [{"podSelector": pod_selector}]
    if namespaces:
        peers.append({"namespaceSelector": {"matchExpressions": [
            {"key": NAMESPACE_NAME, "operator": "In", "values": sorted(set(namespaces))}]}})
    return peers


def _policy(obj: Resource, name: str, selector: dict[str, Any], peers: list[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": obj.namespace,
                         "labels": labels.child_labels(obj, "network-policy")},
            "spec": {"podSelector": selector, "policyTypes": ["Ingress"], "ingress": [{"from": peers}]}}


def ray_network_policy(obj: Resource, control_plane_namespaces: list[str]) -> dict[str, Any]:
    """Ingress to `obj`'s Ray pods only from `obj`'s own pods and the control-plane namespaces."""
    owner = labels.owner_label(obj)
    selector = {"matchLabels": {owner: obj.name},
                "matchExpressions": [{"key": labels.COMPONENT, "operator": "In", "values": list(RAY_COMPONENTS)}]}
    return _policy(obj, owned_name(obj, "ray"), selector,
                   _peers({"matchLabels": {owner: obj.name}}, control_plane_namespaces))


def predictor_network_policy(obj: Resource, kserve_name: str, control_plane_namespaces: list[str]) -> dict[str, Any]:
    """Ingress to the predictor of KServe InferenceService `kserve_name` only from its transformer."""
    selector = {"matchLabels": {KSERVE_SERVICE: kserve_name, KSERVE_COMPONENT: "predictor"}}
    transformer = {"matchLabels": {KSERVE_SERVICE: kserve_name, KSERVE_COMPONENT: "transformer"}}
    return _policy(obj, owned_name(obj, "predictor"), selector, _peers(transformer, control_plane_namespaces))
