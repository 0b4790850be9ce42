"""The project's own CRDs on the real control plane (server-side apply, then wait until each is Established)."""

from __future__ import annotations

import time
from pathlib import Path

import yaml

from llmops_operator.k8s.blocking import BlockingClient
from llmops_operator.k8s.resources import resource_for

ROOT = Path(__file__).resolve().parents[2]
CRD = resource_for("apiextensions.k8s.io/v1", "CustomResourceDefinition")


def crd_documents(paths: list[Path]) -> list[dict]:
    return [doc for path in paths for doc in yaml.safe_load_all(path.read_text()) if doc]


def llmops_crds() -> list[dict]:
    return crd_documents(sorted((ROOT / "crds").glob("llmops.dev_*.yaml")))


def established(client: BlockingClient, name: str) -> bool:
    crd = client.get(CRD, None, name) or {}
    return any(c["type"] == "Established" and c["status"] == "True"
               for c in crd.get("status", {}).get("conditions", []))


def install(client: BlockingClient, crds: list[dict], timeout: float = 180) -> None:
    for crd in crds:
        client.apply(crd, namespace=None)
    deadline = time.monotonic() + timeout
    for crd in crds:
        while not established(client, crd["metadata"]["name"]):
            if time.monotonic() > deadline:
                raise AssertionError(f"{crd['metadata']['name']} not Established within {timeout} s")
            time.sleep(0.2)


def remove(client: BlockingClient, crds: list[dict], timeout: float = 180) -> None:
    """Delete the CRDs and wait until they are gone (the apiserver deletes their objects first)."""
    for crd in crds:
        client.delete(CRD, None, crd["metadata"]["name"])
    deadline = time.monotonic() + timeout
    for crd in crds:
        while client.get(CRD, None, crd["metadata"]["name"]) is not None:
            if time.monotonic() > deadline:
                raise AssertionError(f"{crd['metadata']['name']} not removed within {timeout} s")
            time.sleep(0.2)
