"""Every conformance test runs twice: against the API emulator and against a real kube-apiserver with
kube-controller-manager (`make kube`). Plain HTTP helpers and a kubectl runner."""

from __future__ import annotations

import json
import os
import shutil
import ssl
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pytest

WIDGET_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.test"},
    "spec": {
        "group": "example.test",
        "scope": "Namespaced",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList",
                  "shortNames": ["wd"], "categories": ["llmops", "example"]},
        "versions": [{
            "name": "v1", "served": True, "storage": True,
            "subresources": {"status": {}},
            "additionalPrinterColumns": [
                {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
                {"name": "Ready", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].status'},
                {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
            ],
            "schema": {"openAPIV3Schema": {
                "type": "object",
                "description": "A Widget is a test resource.",
                "properties": {
                    "apiVersion": {"type": "string"},
                    "kind": {"type": "string"},
                    "metadata": {"type": "object"},
                    "spec": {
                        "type": "object",
                        "description": "WidgetSpec describes the widget.",
                        "required": ["replicas"],
                        "x-kubernetes-validations": [
                            {"rule": "self.replicas <= 5 || (has(self.mode) && self.mode == 'big')",
                             "message": "more than 5 replicas needs mode big"},
                        ],
                        "properties": {
                            "replicas": {"type": "integer", "minimum": 1, "maximum": 10,
                                         "description": "How many widgets."},
                            "ratio": {"type": "number", "minimum": 0, "exclusiveMinimum": True,
                                      "maximum": 1, "exclusiveMaximum": True},
                            "mode": {"type": "string", "enum": ["small", "big"]},
                            "label": {"type": "string", "pattern": "^[a-z]+$", "minLength": 2, "maxLength": 8},
                            "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 2},
                            "port": {"x-kubernetes-int-or-string": True},
                            "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                            "containers": {"type": "array", "x-kubernetes-list-type": "map",
                                           "x-kubernetes-list-map-keys": ["name"], "items": {
                                               "type": "object", "required": ["name"],
                                               "properties": {"name": {"type": "string"},
                                                              "image": {"type": "string"}}}},
                            "immutable": {"type": "string",
                                          "x-kubernetes-validations": [
                                              {"rule": "self == oldSelf", "message": "immutable is immutable"}]},
                        },
                    },
                    "status": {
                        "type": "object",
                        "properties": {
                            "phase": {"type": "string", "enum": ["Pending", "Running", "Done"]},
                            "observedGeneration": {"type": "integer"},
                            "conditions": {"type": "array", "items": {
                                "type": "object", "required": ["type", "status"],
                                "properties": {"type": {"type": "string"}, "status": {"type": "string"},
                                               "reason": {"type": "string"}, "message": {"type": "string"}}}},
                        },
                    },
                },
            }},
        }],
    },
}

# A cluster-scoped CRD without a status subresource.
GADGET_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "gadgets.example.test"},
    "spec": {
        "group": "example.test", "scope": "Cluster",
        "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"},
        "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
            "type": "object", "x-kubernetes-preserve-unknown-fields": True}}}],
    },
}


def typed(api_version: str, kind: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A body maker: the real API server refuses a body without apiVersion and kind."""
    return lambda body: {"apiVersion": api_version, "kind": kind, **body}


widget = typed("example.test/v1", "Widget")
gadget = typed("example.test/v1", "Gadget")
configmap = typed("v1", "ConfigMap")
job = typed("batch/v1", "Job")
pod = typed("v1", "Pod")
thing = typed("temp.test/v1", "Thing")


def deployment(name: str, containers: list[dict[str, Any]]) -> dict[str, Any]:
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": {"containers": containers}}}}


class Api:
    """Plain urllib against an API server, with the emulator's bearer token or the real server's client
    certificate (in `context`): call(...) → (status code, decoded JSON body)."""

    def __init__(self, url: str, token: str | None, context: ssl.SSLContext):
        self.url = url
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.context = context

    def open(self, path: str, timeout: float):
        return urllib.request.urlopen(urllib.request.Request(self.url + path, headers=self.headers),
                                      timeout=timeout, context=self.context)

    def call(self, method: str, path: str, body: Any = None, content_type: str = "application/json",
             accept: str = "application/json") -> tuple[int, Any]:
        data = None
        if body is not None:
            data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={**self.headers, "Content-Type": content_type, "Accept": accept})
        try:
            with urllib.request.urlopen(req, timeout=10, context=self.context) as resp:
                raw = resp.read()
                if not resp.headers.get("Content-Type", "").startswith("application/json"):
                    return resp.status, raw.decode()
                return resp.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as err:
            raw = err.read()
            if not err.headers.get("Content-Type", "").startswith("application/json"):
                return err.code, raw.decode()  # e.g. "404 page not found" before a new CRD is served
            return err.code, json.loads(raw) if raw else None

    def ok(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        code, out = self.call(method, path, body, **kw)
        assert code < 300, (code, out)
        return out

    def watch(self, path: str, timeout: float = 5.0) -> list[dict[str, Any]]:
        """Read a watch to its end (the path should carry timeoutSeconds)."""
        with self.open(path, timeout + 5) as resp:
            assert resp.headers["Content-Type"].startswith("application/json")
            return [json.loads(line) for line in resp if line.strip()]

    def namespace(self) -> str:
        name = f"ns-{uuid.uuid4().hex[:8]}"
        self.ok("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
        return name


def eventually(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
            if result:
                return result
        except AssertionError:
            if time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout}s")
        time.sleep(0.02)


# The real server's garbage collector and namespace controller work asynchronously (about 0.5 s and 6 s on an
# idle machine); tests wait for their effects up to this long.
ASYNC_DEADLINE = 90.0


def gone(api: "Api", path: str, timeout: float = ASYNC_DEADLINE) -> bool:
    """Wait until GET `path` answers 404."""
    return eventually(lambda: api.call("GET", path)[0] == 404, timeout)


@dataclass
class Backend:
    name: str
    url: str
    kubeconfig: Path
    context: ssl.SSLContext
    token: str | None = None
    emulator: Any = None  # the ApiServerThread, whose other attributes the emulator's own tests read

    def __getattr__(self, name: str) -> Any:
        if self.emulator is None:
            raise AttributeError(name)
        return getattr(self.emulator, name)


@pytest.fixture(scope="session", params=["emulator", "real"])
def server(request, tmp_path_factory):
    if request.param == "real":
        plane = request.getfixturevalue("real_control_plane")
        yield Backend("real", plane.url, plane.kubeconfig, plane.ssl_context())
        return
    from llmops_sandbox.apiserver import ApiServerThread

    with ApiServerThread() as running:
        yield Backend("emulator", running.url, running.write_kubeconfig(tmp_path_factory.mktemp("kube") / "config"),
                      running.ssl_context(), running.token, running)


@pytest.fixture(scope="session")
def api(server) -> Api:
    api = Api(server.url, server.token, server.context)
    for crd in (WIDGET_CRD, GADGET_CRD):
        api.ok("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
    return api


@pytest.fixture
def ns(api) -> str:
    return api.namespace()


@pytest.fixture(scope="session")
def kubeconfig(server) -> Path:
    return server.kubeconfig


@pytest.fixture(scope="session")
def kubectl(kubeconfig, tmp_path_factory):
    binary = shutil.which("kubectl")
    if binary is None:
        pytest.skip("kubectl is not installed")
    cache = tmp_path_factory.mktemp("kubecache")

    def run(*args: str, check: bool = True, input: str | None = None, timeout: float = 20) -> subprocess.CompletedProcess:
        env = dict(os.environ, KUBECONFIG=str(kubeconfig), HOME=str(cache))
        proc = subprocess.run([binary, "--kubeconfig", str(kubeconfig), "--cache-dir", str(cache), *args],
                              capture_output=True, text=True, input=input, timeout=timeout, env=env)
        if check:
            assert proc.returncode == 0, f"kubectl {' '.join(args)}: {proc.stdout}\n{proc.stderr}"
        return proc

    return run
