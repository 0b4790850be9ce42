"""Where each kind the operator touches lives in the API: group/version, plural, scope."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ApiResource:
    api_version: str
    kind: str
    plural: str
    namespaced: bool = True

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    def path(self, namespace: str | None = None, name: str | None = None, subresource: str | None = None) -> str:
        base = f"/api/{self.api_version}" if not self.group else f"/apis/{self.api_version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        if name:
            base += f"/{name}"
        if subresource:
            base += f"/{subresource}"
        return base


KNOWN: dict[tuple[str, str], ApiResource] = {
    (r.api_version, r.kind): r
    for r in [
        ApiResource("v1", "Namespace", "namespaces", namespaced=False),
        ApiResource("v1", "ConfigMap", "configmaps"),
        ApiResource("v1", "Secret", "secrets"),
        ApiResource("v1", "ServiceAccount", "serviceaccounts"),
        ApiResource("v1", "Service", "services"),
        ApiResource("v1", "Pod", "pods"),
        ApiResource("v1", "Event", "events"),
        ApiResource("batch/v1", "Job", "jobs"),
        ApiResource("batch/v1", "CronJob", "cronjobs"),
        ApiResource("rbac.authorization.k8s.io/v1", "Role", "roles"),
        ApiResource("rbac.authorization.k8s.io/v1", "RoleBinding", "rolebindings"),
        ApiResource("networking.k8s.io/v1", "NetworkPolicy", "networkpolicies"),
        ApiResource("ray.io/v1", "RayJob", "rayjobs"),
        ApiResource("ray.io/v1", "RayCluster", "rayclusters"),
        ApiResource("serving.kserve.io/v1beta1", "InferenceService", "inferenceservices"),
        ApiResource("serving.kserve.io/v1alpha1", "LLMInferenceService", "llminferenceservices"),
        ApiResource("serving.kserve.io/v1alpha1", "LocalModelNamespaceCache", "localmodelnamespacecaches"),
        ApiResource("v1", "PersistentVolumeClaim", "persistentvolumeclaims"),
        ApiResource("apps/v1", "Deployment", "deployments"),
        ApiResource("apiextensions.k8s.io/v1", "CustomResourceDefinition", "customresourcedefinitions", namespaced=False),
    ]
}


def register(resource: ApiResource) -> None:
    KNOWN[(resource.api_version, resource.kind)] = resource


def resource_for(api_version: str, kind: str) -> ApiResource:
    found = KNOWN.get((api_version, kind)) or own_kinds().get((api_version, kind))
    if found is None:
        raise LookupError(f"the operator does not know where {kind} ({api_version}) lives")
    return found


def own_kinds() -> dict[tuple[str, str], ApiResource]:
    """The llmops.dev kinds (imported late: the API package does not depend on this module)."""
    from llmops_operator.api.v1alpha1 import ALL_KINDS, API_VERSION

    return {(API_VERSION, k.info.kind): ApiResource(API_VERSION, k.info.kind, k.info.plural) for k in ALL_KINDS}


def resource_of(obj: dict) -> ApiResource:
    return resource_for(obj["apiVersion"], obj["kind"])
