"""Keep only the fields an installed CRD declares (pure).

An engine's CRD grows between releases (KubeRay v1.6 added RayJob `spec.preRunningDeadlineSeconds`); an older
release refuses the newer fields under server-side apply ("field not declared in schema") and silently drops
them otherwise. Pruning a rendered manifest against the installed schema first lets the operator say which
fields it had to leave out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

PRESERVE = "x-kubernetes-preserve-unknown-fields"
EMBEDDED = "x-kubernetes-embedded-resource"
# The apiserver keeps these at the root of every object and of every embedded resource, declared or not.
ALWAYS_KEPT = ("apiVersion", "kind", "metadata")
STRUCTURE = ("properties", "additionalProperties", "items")
SHOWN_FIELDS = 8
"""Dropped fields a condition names before it says how many more there are."""


@dataclass(frozen=True)
class Dropped:
    """Fields left out of one child because the installed CRD `crd` does not declare them."""

    kind: str
    name: str
    crd: str
    fields: tuple[str, ...]
    needed: str

    def message(self) -> str:
        shown = ", ".join(self.fields[:SHOWN_FIELDS])
        if len(self.fields) > SHOWN_FIELDS:
            shown += f" and {len(self.fields) - SHOWN_FIELDS} more"
        return (f"{self.kind} {self.name}: the installed {self.crd} CRD does not declare {shown}, so the operator "
                f"left them out; install {self.needed} for them to take effect")


def version_schema(crd: dict[str, Any], version: str) -> dict[str, Any] | None:
    """The openAPIV3Schema of `version` in a CustomResourceDefinition, or None when it has none."""
    for entry in crd.get("spec", {}).get("versions", []):
        if entry.get("name") == version:
            return (entry.get("schema") or {}).get("openAPIV3Schema")
    return None


def field_tree(schema: dict[str, Any]) -> dict[str, Any]:
    """Only what pruning reads of a schema (declared fields, map values, array items and the two extensions):
    an engine's CRD is megabytes of descriptions and validations the operator need not keep in memory."""
    tree: dict[str, Any] = {key: True for key in (PRESERVE, EMBEDDED) if schema.get(key)}
    properties = schema.get("properties")
    if isinstance(properties, dict):
        tree["properties"] = {k: field_tree(v) for k, v in properties.items() if isinstance(v, dict)}
    for key in STRUCTURE[1:]:
        value = schema.get(key)
        if isinstance(value, dict):
            tree[key] = field_tree(value)
        elif value is True:
            tree[key] = True
    return tree


def prune(manifest: dict[str, Any], schema: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """`manifest` without the fields `schema` does not declare, and the dotted paths of those removed.

    Follows the apiserver's pruning rules: `properties` declare object fields, `additionalProperties` declares
    map values, `items` array elements, and `x-kubernetes-preserve-unknown-fields` keeps undeclared fields while
    declared ones are still pruned. `apiVersion`, `kind` and `metadata` stay at the root.
    """
    removed: list[str] = []
    pruned = _prune(manifest, schema, "", removed, root=True)
    return pruned, removed


def _prune(value: Any, schema: dict[str, Any], path: str, removed: list[str], root: bool = False) -> Any:
    if isinstance(value, list):
        items = schema.get("items")
        if not isinstance(items, dict):
            return value
        return [_prune(v, items, f"{path}[{i}]", removed) for i, v in enumerate(value)]
    if not isinstance(value, dict):
        return value
    return _prune_object(value, schema, path, removed, root or bool(schema.get(EMBEDDED)))


def _prune_object(value: dict[str, Any], schema: dict[str, Any], path: str, removed: list[str],
                  resource: bool) -> dict[str, Any]:
    properties = schema.get("properties") or {}
    additional = schema.get("additionalProperties")
    out: dict[str, Any] = {}
    for key, child in value.items():
        where = f"{path}.{key}" if path else key
        if resource and key in ALWAYS_KEPT:
            out[key] = child  # ObjectMeta is pruned by its own rules, not by the (often empty) declared schema
        elif key in properties:
            out[key] = _prune(child, properties[key], where, removed)
        elif isinstance(additional, dict):
            out[key] = _prune(child, additional, where, removed)
        elif additional is True or schema.get(PRESERVE):
            out[key] = child
        else:
            removed.append(where)
    return out
