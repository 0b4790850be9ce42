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
               for c in (crd.get("status") or {}).get("conditions") or [])


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


def wait_until_collected_by_owner(client: BlockingClient, timeout: float = 120) -> None:
    """Wait until the garbage collector collects a ConfigMap owned by an llmops.dev object.

    kube-controller-manager's garbage collector learns new resource types by resyncing discovery (every 30 s):
    until then a child of a just-installed kind outlives its deleted owner. One probe, once per session, makes
    later tests' waits for garbage collection independent of when the CRDs went in."""
    namespace = f"gc-probe-{int(time.time() * 1000)}"
    client.create_namespace(namespace)
    guardrail = next(d for d in crd_documents([ROOT / "manifests" / "examples" / "guardrail.yaml"])
                     if d.get("kind") == "Guardrail")
    guardrail = {**guardrail, "metadata": {"name": "probe"}}
    guardrail["spec"] = {k: v for k, v in guardrail["spec"].items() if k != "evaluation"}
    owner = client.apply(guardrail, namespace)
    ref = {"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": "probe",
           "uid": owner["metadata"]["uid"]}
    configmaps = resource_for("v1", "ConfigMap")
    client.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "probe", "ownerReferences": [ref]}},
                 namespace)
    client.delete(resource_for(owner["apiVersion"], "Guardrail"), namespace, "probe")
    deadline = time.monotonic() + timeout
    while client.get(configmaps, namespace, "probe") is not None:
        if time.monotonic() > deadline:
            raise AssertionError(f"the garbage collector did not collect a Guardrail's ConfigMap within {timeout} s")
        time.sleep(0.5)
    client.delete(resource_for("v1", "Namespace"), None, namespace)
