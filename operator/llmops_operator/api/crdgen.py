"""Generate CustomResourceDefinitions from the pydantic API models.

pydantic emits JSON Schema (draft 2020-12); Kubernetes wants a *structural* OpenAPI v3.0 schema.
The translation here is small and total: every construct the models use maps to one structural
form, and anything else raises so that a model change can never produce a CRD the API server
rejects (no ``anyOf``/``oneOf``/``$ref`` survives).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from llmops_operator.api.v1alpha1 import ALL_KINDS
from llmops_operator.api.v1alpha1.common import CATEGORY, GROUP, VERSION, Resource

# JSON Schema keywords that have a structural OpenAPI v3 equivalent and pass through unchanged.
_PASSTHROUGH = {
    "type", "description", "enum", "pattern", "format", "minimum", "maximum", "minLength",
    "maxLength", "minItems", "maxItems", "minProperties", "maxProperties", "uniqueItems",
    "multipleOf", "required",
}
_DROPPED = {"title", "default", "examples", "$defs", "discriminator", "readOnly", "writeOnly"}


class SchemaError(ValueError):
    """A model uses a construct that has no structural-schema form."""


def _resolve(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if ref is None:
        return node
    target = copy.deepcopy(defs[ref.rsplit("/", 1)[-1]])
    # Keywords beside $ref (a field's own description) win over the referenced model's.
    target.update({k: v for k, v in node.items() if k != "$ref"})
    return target


def _strip_null(variants: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [v for v in variants if v.get("type") != "null"]


def _union(node: dict[str, Any], defs: dict[str, Any], path: str) -> dict[str, Any]:
    variants = _strip_null(node.get("anyOf") or node.get("oneOf"))
    rest = {k: v for k, v in node.items() if k not in ("anyOf", "oneOf")}
    if len(variants) == 1:
        return structural({**_resolve(variants[0], defs), **rest}, defs, path)
    types = {v.get("type") for v in variants}
    if types == {"integer", "string"}:
        # Kubernetes quantities and ports: keep the string variant's pattern/length constraints.
        string = next(v for v in variants if v.get("type") == "string")
        out = {k: v for k, v in {**string, **rest}.items() if k in _PASSTHROUGH and k != "type"}
        out["x-kubernetes-int-or-string"] = True
        return out
    raise SchemaError(f"{path}: union of {sorted(map(str, types))} has no structural form")


def _exclusive_bounds(out: dict[str, Any], node: dict[str, Any]) -> None:
    # Draft 2020-12 writes exclusive bounds as numbers, OpenAPI 3.0 as booleans beside minimum/maximum.
    if "exclusiveMinimum" in node:
        out["minimum"] = node["exclusiveMinimum"]
        out["exclusiveMinimum"] = True
    if "exclusiveMaximum" in node:
        out["maximum"] = node["exclusiveMaximum"]
        out["exclusiveMaximum"] = True


def _object(node: dict[str, Any], out: dict[str, Any], defs: dict[str, Any], path: str) -> None:
    props = node.get("properties")
    extra = node.get("additionalProperties")
    if props:
        out["properties"] = {k: structural(v, defs, f"{path}.{k}") for k, v in props.items()}
    if isinstance(extra, dict) and extra:
        out["additionalProperties"] = structural(extra, defs, f"{path}.*")
    elif not props and extra is not False:
        # dict[str, Any] and free-form blocks: the only place unknown fields are kept.
        out["x-kubernetes-preserve-unknown-fields"] = True


def structural(node: dict[str, Any], defs: dict[str, Any], path: str = "") -> dict[str, Any]:
    """Translate one pydantic JSON Schema node into a structural OpenAPI v3 schema node."""
    node = _resolve(node, defs)
    if "anyOf" in node or "oneOf" in node:
        return _union(node, defs, path)
    if "allOf" in node:
        if len(node["allOf"]) != 1:
            raise SchemaError(f"{path}: allOf with several members")
        merged = {**_resolve(node["allOf"][0], defs), **{k: v for k, v in node.items() if k != "allOf"}}
        return structural(merged, defs, path)
    if "const" in node:
        node = {**node, "enum": [node["const"]], "type": node.get("type", "string")}
    if "enum" in node and "type" not in node:
        node = {**node, "type": "string"}
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _PASSTHROUGH:
            out[key] = value
        elif key.startswith("x-kubernetes-"):
            out[key] = value
        elif key not in _DROPPED | {"properties", "additionalProperties", "items", "const",
                                     "exclusiveMinimum", "exclusiveMaximum"}:
            raise SchemaError(f"{path}: unsupported JSON Schema keyword {key!r}")
    _exclusive_bounds(out, node)
    kind = node.get("type")
    if kind is None and not out.get("x-kubernetes-preserve-unknown-fields"):
        # typing.Any: free-form value.
        out["x-kubernetes-preserve-unknown-fields"] = True
    if kind == "object":
        _object(node, out, defs, path)
    elif kind == "array":
        out["items"] = structural(node.get("items", {}), defs, f"{path}[]")
    return out


def openapi_schema(resource: type[Resource]) -> dict[str, Any]:
    """The CRD's openAPIV3Schema for one kind: spec from the spec model, status from the status model."""
    spec_model = resource.model_fields["spec"].annotation
    status_model = resource.model_fields["status"].annotation
    status_model = next(a for a in getattr(status_model, "__args__", (status_model,)) if a is not type(None))
    spec = spec_model.model_json_schema(by_alias=True, mode="validation")
    status = status_model.model_json_schema(by_alias=True, mode="serialization")
    return {
        "type": "object",
        "description": (resource.__doc__ or "").strip(),
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": structural(spec, spec.get("$defs", {}), "spec"),
            "status": structural(status, status.get("$defs", {}), "status"),
        },
    }


def crd(resource: type[Resource]) -> dict[str, Any]:
    """The whole CustomResourceDefinition for one kind."""
    info = resource.info
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{info.plural}.{GROUP}",
            "labels": {"app.kubernetes.io/name": "llmops-operator", "app.kubernetes.io/part-of": "llmops"},
        },
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": info.kind,
                "listKind": f"{info.kind}List",
                "plural": info.plural,
                "singular": info.singular,
                "shortNames": info.short_names,
                "categories": [CATEGORY],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [
                        {k: v for k, v in {
                            "name": c.name, "type": c.type, "jsonPath": c.json_path,
                            "description": c.description or None, "priority": c.priority or None,
                        }.items() if v is not None}
                        for c in info.columns
                    ],
                    "schema": {"openAPIV3Schema": openapi_schema(resource)},
                }
            ],
        },
    }


def crd_filename(resource: type[Resource]) -> str:
    return f"{GROUP}_{resource.info.plural}.yaml"


def render_crd(resource: type[Resource]) -> str:
    return yaml.safe_dump(crd(resource), sort_keys=False, width=120)


def generated_crds() -> dict[str, str]:
    """File name -> YAML text for every kind, in a stable order."""
    return {crd_filename(r): render_crd(r) for r in ALL_KINDS}


def write_crds(targets: list[Path]) -> list[Path]:
    """Write every CRD into each target directory; remove stale llmops.dev CRD files. Idempotent."""
    files = generated_crds()
    written = []
    for target in targets:
        target.mkdir(parents=True, exist_ok=True)
        for stale in target.glob(f"{GROUP}_*.yaml"):
            if stale.name not in files:
                stale.unlink()
        for name, text in files.items():
            path = target / name
            if not path.exists() or path.read_text() != text:
                path.write_text(text)
            written.append(path)
    return written
