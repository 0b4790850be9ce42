"""The API reference (docs/api-reference.md), generated from the same schemas as the CRDs."""

from __future__ import annotations

from typing import Any, Iterator

from llmops_operator.api.crdgen import crd
from llmops_operator.api.v1alpha1 import ALL_KINDS
from llmops_operator.api.v1alpha1.common import API_VERSION


def _type(node: dict[str, Any]) -> str:
    if node.get("x-kubernetes-int-or-string"):
        return "int or string"
    kind = node.get("type", "any")
    if kind == "array":
        return f"[]{_type(node.get('items', {}))}"
    if kind == "object" and "additionalProperties" in node:
        return f"map[string]{_type(node['additionalProperties'])}"
    if "enum" in node:
        return f"{kind}: " + " \\| ".join(str(v) for v in node["enum"])
    return kind


def _bounds(node: dict[str, Any]) -> str:
    parts = []
    if "minimum" in node:
        parts.append((">" if node.get("exclusiveMinimum") else ">=") + f" {node['minimum']}")
    if "maximum" in node:
        parts.append(("<" if node.get("exclusiveMaximum") else "<=") + f" {node['maximum']}")
    if "maxLength" in node:
        parts.append(f"max {node['maxLength']} chars")
    if "maxItems" in node:
        parts.append(f"max {node['maxItems']} items")
    return ", ".join(parts)


def fields(node: dict[str, Any], prefix: str) -> Iterator[tuple[str, str, bool, str]]:
    """(path, type, required, description) for every field under `node`, depth first."""
    required = set(node.get("required", []))
    for name, child in node.get("properties", {}).items():
        path = f"{prefix}.{name}"
        description = " ".join(child.get("description", "").split())
        bounds = _bounds(child)
        if bounds:
            description = f"{description} ({bounds})" if description else f"({bounds})"
        yield path, _type(child), name in required, description
        target = child.get("items", child) if child.get("type") == "array" else child
        yield from fields(target, path + ("[]" if child.get("type") == "array" else ""))


def _rules(node: dict[str, Any], prefix: str) -> Iterator[tuple[str, str]]:
    for rule in node.get("x-kubernetes-validations", []):
        yield prefix, rule["message"]
    for name, child in node.get("properties", {}).items():
        target = child.get("items", child) if child.get("type") == "array" else child
        yield from _rules(target, f"{prefix}.{name}")


def kind_section(resource: type) -> str:
    definition = crd(resource)
    version = definition["spec"]["versions"][0]
    schema = version["schema"]["openAPIV3Schema"]
    info = resource.info
    lines = [
        f"## {info.kind}",
        "",
        schema.get("description", ""),
        "",
        f"`apiVersion: {API_VERSION}` · plural `{info.plural}` · short name `{', '.join(info.short_names)}`"
        + (f" · engine extra `{info.requires}`" if info.requires else ""),
        "",
        "Printer columns: " + ", ".join(f"`{c['name']}`" for c in version["additionalPrinterColumns"]),
        "",
    ]
    for block in ("spec", "status"):
        lines += [f"### {info.kind} {block}", "", "| field | type | required | description |", "|---|---|---|---|"]
        for path, type_, required, description in fields(schema["properties"][block], block):
            cell = description.replace("|", "\\|")
            lines.append(f"| `{path}` | {type_} | {'yes' if required else ''} | {cell} |")
        lines.append("")
    rules = list(_rules(schema["properties"]["spec"], "spec"))
    if rules:
        lines += ["Validation rules (enforced by the API server and by the operator):", ""]
        lines += [f"- `{where}`: {message}" for where, message in rules]
        lines.append("")
    return "\n".join(lines)


def api_reference() -> str:
    header = [
        "# API reference",
        "",
        "Generated from the API models by `llmops crds`; do not edit by hand.",
        "Every kind also has `status.observedGeneration`, `status.phase` and `status.conditions[]` (see docs/status.md).",
        "",
    ]
    return "\n".join(header + [kind_section(k) for k in ALL_KINDS]).rstrip() + "\n"
