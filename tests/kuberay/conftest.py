"""KubeRay's CRDs, read from the Go module cache, installed on the real control plane one version at a time."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from llmops_sandbox.realkube import binaries

CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"


class Client:
    """JSON over the admin client certificate: call(...) → (status code, decoded body)."""

    def __init__(self, plane):
        self.url = plane.url
        self.context = plane.ssl_context()

    def call(self, method: str, path: str, body: Any = None,
             content_type: str = "application/json") -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method,
                                         headers={"Content-Type": content_type, "Accept": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=60, context=self.context) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"null")

    def apply(self, obj: dict[str, Any], path: str, dry_run: bool = False) -> tuple[int, Any]:
        query = "?fieldManager=llmops-test&force=true" + ("&dryRun=All" if dry_run else "")
        return self.call("PATCH", path + query, obj, "application/apply-patch+yaml")


def wait_for(check, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not within {timeout} s")
        time.sleep(0.2)


def _established(client: Client, name: str) -> bool:
    code, crd = client.call("GET", f"{CRDS}/{name}")
    return code == 200 and any(c["type"] == "Established" and c["status"] == "True"
                               for c in (crd.get("status") or {}).get("conditions") or [])


def load_crds(directory: Path, plurals: tuple[str, ...] = ("rayjobs",)) -> list[dict[str, Any]]:
    # RayJob's alone by default: each KubeRay CRD is about a megabyte, and installing one takes most of a minute
    # on a busy machine.
    return [yaml.safe_load((directory / f"ray.io_{plural}.yaml").read_text()) for plural in plurals]


def install_crds(client: Client, crds: list[dict[str, Any]]) -> None:
    for crd in crds:
        code, out = client.apply(crd, f"{CRDS}/{crd['metadata']['name']}")
        assert code in (200, 201), out
    for crd in crds:
        wait_for(lambda: _established(client, crd["metadata"]["name"]), f"{crd['metadata']['name']} Established")


def remove_crds(client: Client, crds: list[dict[str, Any]]) -> None:
    for crd in crds:
        client.call("DELETE", f"{CRDS}/{crd['metadata']['name']}")
    for crd in crds:
        wait_for(lambda: client.call("GET", f"{CRDS}/{crd['metadata']['name']}")[0] == 404,
                 f"{crd['metadata']['name']} removed")


@pytest.fixture(scope="module")
def client(real_control_plane) -> Client:
    return Client(real_control_plane)


@pytest.fixture(scope="module", params=binaries.kuberay_versions())
def kuberay(request, client) -> tuple[str, dict[str, dict[str, Any]]]:
    """(version, CRDs by kind) with that version's CRDs applied server-side; removed again afterwards, so the
    next version's schema is the only one served."""
    version = request.param
    directory = binaries.kuberay_crd_dir(version)
    if directory is None:
        pytest.skip(f"KubeRay {version}'s module is not in the Go module cache and cannot be downloaded: "
                    "run `make kube`")
    crds = load_crds(directory)
    install_crds(client, crds)
    yield version, {crd["spec"]["names"]["kind"]: crd for crd in crds}
    remove_crds(client, crds)
