"""What the server serves: built-in resources and the resources that CRDs register."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Resource:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    singular: str = ""
    short_names: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    status_subresource: bool = False
    schema: dict[str, Any] | None = None  # openAPIV3Schema; None = accept anything
    printer_columns: list[dict[str, Any]] = field(default_factory=list)
    crd: str | None = None  # name of the CRD that registered it
    storage_group: str = ""  # objects are stored per (group, plural) across versions

    def __post_init__(self) -> None:
        self.singular = self.singular or self.kind.lower()
        self.storage_group = self.group

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def key(self) -> tuple[str, str]:
        return (self.group, self.plural)

    @property
    def group_kind(self) -> str:
        return f"{self.kind}.{self.group}" if self.group else self.kind

    def verbs(self) -> list[str]:
        return ["create", "delete", "get", "list", "patch", "update", "watch"]


def _r(group, version, plural, kind, namespaced=True, short=(), status=False, categories=()):
    return Resource(group, version, plural, kind, namespaced, short_names=list(short),
                    status_subresource=status, categories=list(categories))


BUILTINS = [
    _r("", "v1", "namespaces", "Namespace", False, ["ns"], True),
    _r("", "v1", "configmaps", "ConfigMap", True, ["cm"]),
    _r("", "v1", "secrets", "Secret"),
    _r("", "v1", "services", "Service", True, ["svc"], True, ["all"]),
    _r("", "v1", "serviceaccounts", "ServiceAccount", True, ["sa"]),
    _r("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", True, ["pvc"], True),
    _r("", "v1", "pods", "Pod", True, ["po"], True, ["all"]),
    _r("", "v1", "events", "Event", True, ["ev"]),
    _r("events.k8s.io", "v1", "events", "Event", True, ["ev"]),
    _r("batch", "v1", "jobs", "Job", True, [], True, ["all"]),
    _r("batch", "v1", "cronjobs", "CronJob", True, ["cj"], True, ["all"]),
    _r("apps", "v1", "deployments", "Deployment", True, ["deploy"], True, ["all"]),
    _r("rbac.authorization.k8s.io", "v1", "roles", "Role"),
    _r("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding"),
    _r("coordination.k8s.io", "v1", "leases", "Lease"),
    _r("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", True, ["netpol"]),
    _r("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", False,
       ["crd", "crds"], True),
]


class Registry:
    """(group, version) → plural → Resource, plus group ordering for discovery."""

    def __init__(self) -> None:
        self.resources: dict[tuple[str, str], dict[str, Resource]] = {}
        self.group_versions: dict[str, list[str]] = {}  # group → versions, preferred first
        for res in BUILTINS:
            self.add(res)

    def add(self, res: Resource) -> None:
        self.resources.setdefault((res.group, res.version), {})[res.plural] = res
        versions = self.group_versions.setdefault(res.group, [])
        if res.version not in versions:
            versions.append(res.version)

    def lookup(self, group: str, version: str, plural: str) -> Resource | None:
        return self.resources.get((group, version), {}).get(plural)

    def versions_of(self, group: str, plural: str) -> list[Resource]:
        return [r[plural] for (g, _), r in self.resources.items() if g == group and plural in r]

    def register_crd(self, crd: dict[str, Any]) -> list[Resource]:
        """Register the served versions of a CRD (replacing what it registered before)."""
        name = crd["metadata"]["name"]
        self.unregister_crd(name)
        spec = crd.get("spec", {})
        names = spec.get("names", {})
        group = spec["group"]
        added = []
        versions = [v for v in spec.get("versions", []) if v.get("served", True)]
        # The storage version is preferred; otherwise keep the CRD's order.
        versions.sort(key=lambda v: not v.get("storage", False))
        for v in versions:
            res = Resource(
                group=group, version=v["name"], plural=names["plural"], kind=names["kind"],
                namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                singular=names.get("singular") or names["kind"].lower(),
                short_names=list(names.get("shortNames", []) or []),
                categories=list(names.get("categories", []) or []),
                status_subresource="status" in ((v.get("subresources") or {})),
                schema=((v.get("schema") or {}).get("openAPIV3Schema")),
                printer_columns=list(v.get("additionalPrinterColumns", []) or []),
                crd=name,
            )
            self.add(res)
            added.append(res)
        return added

    def unregister_crd(self, name: str) -> None:
        for gv in list(self.resources):
            plurals = self.resources[gv]
            for plural, res in list(plurals.items()):
                if res.crd == name:
                    del plurals[plural]
            if not plurals:
                del self.resources[gv]
                group, version = gv
                if version in self.group_versions.get(group, []):
                    self.group_versions[group].remove(version)
                    if not self.group_versions[group]:
                        del self.group_versions[group]

    def groups(self) -> list[str]:
        return list(self.group_versions)

    def in_group_version(self, group: str, version: str) -> list[Resource]:
        return list(self.resources.get((group, version), {}).values())
