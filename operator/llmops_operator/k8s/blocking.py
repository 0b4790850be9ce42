"""A small blocking API client for command-line tools and tests (the operator itself uses k8s/client.py)."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from llmops_operator.k8s.kubeconfig import Connection, TokenSource, from_kubeconfig, load
from llmops_operator.k8s.resources import ApiResource, resource_for


class BlockingClient:
    def __init__(self, kubeconfig: str | Path | None = None, field_manager: str = "llmops-cli"):
        """`kubeconfig` None: in-cluster credentials in a pod, else KUBECONFIG, as the operator does."""
        self.conn: Connection = load() if kubeconfig is None else from_kubeconfig(str(kubeconfig))
        self.field_manager = field_manager
        self.token = TokenSource(self.conn)
        ssl = self.conn.ssl_context()
        self._opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=ssl)) if ssl else \
            urllib.request.build_opener()

    def request(self, method: str, path: str, body: Any = None,
                content_type: str = "application/json") -> dict[str, Any]:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": content_type, "Accept": "application/json"}
        token = self.token.current()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        req = urllib.request.Request(self.conn.server + path, data=data, method=method, headers=headers)
        try:
            with self._opener.open(req, timeout=30) as resp:
                return json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as err:
            err.body = json.loads(err.read() or b"{}")  # type: ignore[attr-defined]
            raise

    def apply(self, obj: dict[str, Any], namespace: str | None) -> dict[str, Any]:
        """Server-side apply; `namespace` overrides the manifest's (None for cluster-scoped kinds)."""
        where = resource_for(obj["apiVersion"], obj["kind"])
        if where.namespaced:
            namespace = namespace or obj["metadata"].get("namespace") or "default"
            obj = {**obj, "metadata": {**obj["metadata"], "namespace": namespace}}
        query = urllib.parse.urlencode({"fieldManager": self.field_manager, "force": "true"})
        return self.request("PATCH", f"{where.path(namespace, obj['metadata']['name'])}?{query}",
                            obj, "application/apply-patch+yaml")

    def apply_file(self, path: Path, namespace: str | None) -> list[dict[str, Any]]:
        return [self.apply(doc, namespace) for doc in yaml.safe_load_all(path.read_text()) if doc]

    def get(self, where: ApiResource, namespace: str | None, name: str) -> dict[str, Any] | None:
        try:
            return self.request("GET", where.path(namespace, name))
        except urllib.error.HTTPError as err:
            if err.code == 404:
                return None
            raise

    def list(self, where: ApiResource, namespace: str | None = None, selector: str | None = None) -> list[dict]:
        query = f"?labelSelector={urllib.parse.quote(selector)}" if selector else ""
        return self.request("GET", where.path(namespace) + query).get("items", [])

    def patch(self, where: ApiResource, namespace: str, name: str, patch: dict, subresource: str | None = None):
        return self.request("PATCH", where.path(namespace, name, subresource), patch, "application/merge-patch+json")

    def delete(self, where: ApiResource, namespace: str | None, name: str) -> None:
        try:
            self.request("DELETE", where.path(namespace, name))
        except urllib.error.HTTPError as err:
            if err.code != 404:
                raise

    def create_namespace(self, name: str) -> None:
        self.request("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
