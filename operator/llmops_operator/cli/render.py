"""`llmops render`: the children the operator would create, computed offline by the same builders."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import yaml

from llmops_operator.api.v1alpha1 import API_VERSION, BY_KIND
from llmops_operator.core.contract import Context, InvalidSpec, parse
from llmops_operator.controllers.kinds import reconciler_for


class RenderError(ValueError):
    pass


def manifest_files(paths: list[Path]) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml"))
        elif path.exists():
            yield path
        else:
            raise RenderError(f"{path}: no such file or directory")


def documents(path: Path) -> Iterator[dict[str, Any]]:
    try:
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict):
                yield doc
    except yaml.YAMLError as err:
        raise RenderError(f"{path}: not valid YAML: {err}") from None


def render_object(body: dict[str, Any], ctx: Context, known: dict[tuple[str, str, str], dict[str, Any]]
                  ) -> list[dict[str, Any]]:
    """Children of one llmops.dev object; InvalidSpec when the operator would report it.

    References resolve against the other objects being rendered (`known`, keyed by namespace,
    kind, name), so a file set previews as the cluster would reconcile it.
    """
    resource = BY_KIND[body["kind"]]
    obj = parse(resource, body)
    reconciler = reconciler_for(resource)
    reconciler.check(obj, ctx)
    refs = {(kind, name): _projected(known.get((obj.namespace, kind, name)), ctx)
            for kind, name in reconciler.references(obj)}
    return reconciler.children(obj, ctx, refs) or []


def _projected(body: dict[str, Any] | None, ctx: Context) -> dict[str, Any] | None:
    """A referenced object from the file set, with the status it will have once Ready."""
    if body is None or body.get("status"):
        return body
    try:
        resource = BY_KIND[body["kind"]]
        status = reconciler_for(resource).projected_status(parse(resource, body), ctx)
    except InvalidSpec:
        return body
    return {**body, "status": status} if status else body


def _with_namespace(body: dict[str, Any]) -> dict[str, Any]:
    return {**body, "metadata": {"namespace": "default", **(body.get("metadata") or {})}}


def render_paths(paths: list[Path], ctx: Context | None = None) -> list[dict[str, Any]]:
    ctx = ctx or Context.default()
    objects = [(path, _with_namespace(body)) for path in manifest_files(paths) for body in documents(path)
               if body.get("apiVersion") == API_VERSION and body.get("kind") in BY_KIND]
    known = {(b["metadata"]["namespace"], b["kind"], b["metadata"].get("name")): b for _, b in objects}
    out = []
    for path, body in objects:
        name = body["metadata"].get("name", "?")
        try:
            out.extend(render_object(body, ctx, known))
        except InvalidSpec as err:
            raise RenderError(f"{path}: {body['kind']} {name!r} is invalid: {err}") from None
    return out
