"""Discovery (legacy and aggregated v2) and OpenAPI v3 documents built from CRD schemas."""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

from .core import has_status
from .registry import Registry, Resource

AGGREGATED = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
VERSION = {
    "major": "1", "minor": "32", "gitVersion": "v1.32.0-llmops-sandbox", "gitCommit": "0" * 40,
    "gitTreeState": "clean", "buildDate": "2024-12-11T00:00:00Z", "goVersion": "go1.23.4", "compiler": "gc",
    "platform": "linux/amd64",
}


def wants_aggregated(accept: str) -> bool:
    first = accept.split(",")[0].replace(" ", "")
    return "g=apidiscovery.k8s.io" in first and "v=v2;" in first + ";" and "as=APIGroupDiscoveryList" in first


def api_versions(host: str) -> dict[str, Any]:
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": host}]}


def _group_entry(registry: Registry, group: str) -> dict[str, Any]:
    versions = [{"groupVersion": f"{group}/{v}", "version": v} for v in registry.group_versions[group]]
    return {"name": group, "versions": versions, "preferredVersion": versions[0]}


def group_list(registry: Registry) -> dict[str, Any]:
    return {"kind": "APIGroupList", "apiVersion": "v1",
            "groups": [_group_entry(registry, g) for g in registry.groups() if g]}


def group(registry: Registry, name: str) -> dict[str, Any] | None:
    if not name or name not in registry.group_versions:
        return None
    return dict(_group_entry(registry, name), kind="APIGroup", apiVersion="v1")


def resource_list(registry: Registry, group: str, version: str) -> dict[str, Any] | None:
    resources = registry.in_group_version(group, version)
    if not resources:
        return None
    out = []
    for res in sorted(resources, key=lambda r: r.plural):
        entry = {"name": res.plural, "singularName": res.singular, "namespaced": res.namespaced,
                 "kind": res.kind, "verbs": res.verbs()}
        if res.short_names:
            entry["shortNames"] = res.short_names
        if res.categories:
            entry["categories"] = res.categories
        out.append(entry)
        if has_status(res):
            out.append({"name": f"{res.plural}/status", "singularName": "", "namespaced": res.namespaced,
                        "kind": res.kind, "verbs": ["get", "patch", "update"]})
    return {"kind": "APIResourceList", "apiVersion": "v1",
            "groupVersion": f"{group}/{version}" if group else version, "resources": out}


def _aggregated_resource(res: Resource) -> dict[str, Any]:
    kind = {"group": res.group, "version": res.version, "kind": res.kind}
    entry: dict[str, Any] = {"resource": res.plural, "responseKind": kind,
                             "scope": "Namespaced" if res.namespaced else "Cluster",
                             "singularResource": res.singular, "verbs": res.verbs()}
    if res.short_names:
        entry["shortNames"] = res.short_names
    if res.categories:
        entry["categories"] = res.categories
    if has_status(res):
        entry["subresources"] = [{"subresource": "status", "responseKind": kind, "verbs": ["get", "patch", "update"]}]
    return entry


def aggregated(registry: Registry, legacy: bool) -> dict[str, Any]:
    """APIGroupDiscoveryList for /api (legacy=True, the core group) or /apis."""
    items = []
    for name in registry.groups():
        if bool(name) == legacy:
            continue
        versions = [{"version": v, "freshness": "Current",
                     "resources": [_aggregated_resource(r) for r in
                                   sorted(registry.in_group_version(name, v), key=lambda r: r.plural)]}
                    for v in registry.group_versions[name]]
        meta = {"name": name} if name else {}
        items.append({"metadata": meta, "versions": versions})
    return {"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {},
            "items": items}


# -- OpenAPI v3 -------------------------------------------------------------------------------------
OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"


def _schema_name(res: Resource) -> str:
    group = ".".join(reversed(res.group.split("."))) if res.group else "io.k8s.api.core"
    return f"{group}.{res.version}.{res.kind}"


OBJECT_META_SCHEMA: dict[str, Any] = {
    "type": "object", "description": "ObjectMeta is metadata that all persisted resources must "
    "have, which includes all objects users must create.",
    "properties": {
        "name": {"type": "string", "description": "Name must be unique within a namespace."},
        "namespace": {"type": "string", "description": "Namespace defines the space within which "
                      "each name must be unique."},
        "labels": {"type": "object", "additionalProperties": {"type": "string"},
                   "description": "Map of string keys and values."},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"},
                        "description": "Unstructured key value map."},
        "uid": {"type": "string"}, "resourceVersion": {"type": "string"},
        "generation": {"type": "integer", "format": "int64"},
        "creationTimestamp": {"type": "string", "format": "date-time"},
        "finalizers": {"type": "array", "items": {"type": "string"}},
    }}
WRITE_PARAMETERS = [{"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": True},
                     "description": "Ignore, Warn or Strict: how unknown fields are handled."},
                    {"name": "fieldManager", "in": "query", "schema": {"type": "string", "uniqueItems": True}},
                    {"name": "dryRun", "in": "query", "schema": {"type": "string", "uniqueItems": True}}]


def _object_schema(res: Resource) -> dict[str, Any]:
    schema = copy.deepcopy(res.schema) if res.schema else {"type": "object",
                                                           "x-kubernetes-preserve-unknown-fields": True}
    props = schema.setdefault("properties", {})
    props.setdefault("apiVersion", {"type": "string", "description": "APIVersion defines the versioned schema "
                                    "of this representation of an object."})
    props.setdefault("kind", {"type": "string", "description": "Kind is a string value representing the REST "
                              "resource this object represents."})
    props["metadata"] = {"allOf": [{"$ref": f"#/components/schemas/{OBJECT_META}"}],
                         "description": "Standard object's metadata."}
    schema["type"] = "object"
    schema["x-kubernetes-group-version-kind"] = [{"group": res.group, "version": res.version, "kind": res.kind}]
    return schema


def _paths(res: Resource, prefix: str) -> dict[str, Any]:
    ns = "/namespaces/{namespace}" if res.namespaced else ""
    ref = {"$ref": f"#/components/schemas/{_schema_name(res)}"}
    gvk = {"group": res.group, "version": res.version, "kind": res.kind}
    ok = {"200": {"description": "OK", "content": {"application/json": {"schema": ref}}}}
    params = copy.deepcopy(WRITE_PARAMETERS)
    return {
        f"{prefix}{ns}/{res.plural}/{{name}}": {
            "get": {"operationId": f"read{res.kind}", "responses": ok, "x-kubernetes-action": "get",
                    "x-kubernetes-group-version-kind": gvk},
            "put": {"operationId": f"replace{res.kind}", "responses": ok, "parameters": params,
                    "x-kubernetes-action": "put", "x-kubernetes-group-version-kind": gvk},
            "patch": {"operationId": f"patch{res.kind}", "responses": ok, "parameters": params + [
                {"name": "force", "in": "query", "schema": {"type": "boolean", "uniqueItems": True}}],
                "x-kubernetes-action": "patch", "x-kubernetes-group-version-kind": gvk},
        },
        f"{prefix}{ns}/{res.plural}": {
            "post": {"operationId": f"create{res.kind}", "responses": ok, "parameters": params,
                     "x-kubernetes-action": "post", "x-kubernetes-group-version-kind": gvk},
        },
    }


def openapi_document(registry: Registry, group: str, version: str) -> dict[str, Any] | None:
    resources = registry.in_group_version(group, version)
    if not resources:
        return None
    gv = f"{group}/{version}" if group else version
    prefix = f"/apis/{gv}" if group else f"/api/{gv}"
    schemas: dict[str, Any] = {OBJECT_META: copy.deepcopy(OBJECT_META_SCHEMA)}
    paths: dict[str, Any] = {}
    for res in resources:
        schemas[_schema_name(res)] = _object_schema(res)
        paths.update(_paths(res, prefix))
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": VERSION["gitVersion"]},
            "paths": paths, "components": {"schemas": schemas}}


def openapi_root(registry: Registry) -> dict[str, Any]:
    paths = {}
    for name in registry.groups():
        for version in registry.group_versions[name]:
            doc = openapi_document(registry, name, version)
            digest = hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:32].upper()
            key = f"apis/{name}/{version}" if name else f"api/{version}"
            paths[key] = {"serverRelativeURL": f"/openapi/v3/{key}?hash={digest}"}
    return {"paths": paths}
