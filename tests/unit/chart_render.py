"""Rendering the Helm chart with the real Helm engine (helm-python-sdk embeds Helm v4's Go SDK), for the chart tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

helm = pytest.importorskip("helm_python")

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "llmops-operator"
RELEASE, NAMESPACE = "llmops-operator", "llmops-system"
RBAC_KINDS = {"Role", "ClusterRole"}


def render(values: dict | None = None) -> dict[str, str]:
    return helm.Chart.load(str(CHART)).render(values, name=RELEASE, namespace=NAMESPACE)


def objects(values: dict | None = None) -> list[dict]:
    docs = []
    for path, text in render(values).items():
        if path.endswith("NOTES.txt"):
            continue
        docs += [d for d in yaml.safe_load_all(text) if d]
    return docs


def one(docs: list[dict], kind: str) -> dict:
    found = [d for d in docs if d["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, got {[d['metadata']['name'] for d in found]}"
    return found[0]


def chart_values() -> dict:
    return yaml.safe_load((CHART / "values.yaml").read_text())


def grants(docs: list[dict], *, kinds: set[str] = RBAC_KINDS) -> dict[tuple[str, str], set[str]]:
    """(apiGroup, resource) -> verbs, over every rule of the given RBAC kinds."""
    out: dict[tuple[str, str], set[str]] = {}
    for doc in docs:
        if doc["kind"] not in kinds:
            continue
        for rule in doc["rules"]:
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    out.setdefault((group, resource), set()).update(rule["verbs"])
    return out


def container(docs: list[dict]) -> dict:
    (c,) = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    return c
