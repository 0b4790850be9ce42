"""manifests/install: the kustomize install, generated from the chart (hack/render-install.py); must not drift."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

helm = pytest.importorskip("helm_python")

ROOT = Path(__file__).resolve().parents[2]
INSTALL = ROOT / "manifests" / "install"
NAMESPACE = "llmops-system"

pytestmark = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (for `kubectl kustomize`) not installed")


def load_script():
    spec = importlib.util.spec_from_file_location("render_install", ROOT / "hack" / "render-install.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def kustomized() -> list[dict]:
    out = subprocess.run(["kubectl", "kustomize", str(INSTALL)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def key(doc: dict) -> tuple[str, str, str]:
    return doc["kind"], doc["metadata"].get("namespace", ""), doc["metadata"]["name"]


def for_kustomize(node):
    """The chart's objects with Helm's bookkeeping labels as the install carries them (dict-level, independent
    of the script's text rewrite, so a bad rewrite shows up as a mismatch)."""
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if k == "helm.sh/chart":
                continue
            if k == "app.kubernetes.io/managed-by" and v == "Helm":
                v = "kustomize"
            out[k] = for_kustomize(v)
        return out
    if isinstance(node, list):
        return [for_kustomize(v) for v in node]
    return node


def test_generated_files_are_fresh():
    assert load_script().main(["--check"]) == 0, "run: .venv/bin/python hack/render-install.py"


def test_kustomize_has_the_crds_the_namespace_and_the_operator(kustomized):
    kinds = [d["kind"] for d in kustomized]
    crds = {d["metadata"]["name"] for d in kustomized if d["kind"] == "CustomResourceDefinition"}
    generated = {yaml.safe_load(p.read_text())["metadata"]["name"] for p in (ROOT / "crds").glob("llmops.dev_*.yaml")}
    assert len(crds) == 7 and crds == generated
    assert kinds.count("Deployment") == 1
    assert [d["metadata"]["name"] for d in kustomized if d["kind"] == "Namespace"] == [NAMESPACE]
    for doc in kustomized:
        if doc["kind"] not in {"CustomResourceDefinition", "Namespace", "ClusterRole", "ClusterRoleBinding"}:
            assert doc["metadata"]["namespace"] == NAMESPACE, key(doc)
    crd_files = {p.name: p.read_text() for p in (ROOT / "crds").glob("llmops.dev_*.yaml")}
    for doc in kustomized:
        if doc["kind"] == "CustomResourceDefinition":
            source = next(yaml.safe_load(t) for t in crd_files.values()
                          if yaml.safe_load(t)["metadata"]["name"] == doc["metadata"]["name"])
            assert doc == source, "kustomize passes the CRDs through unchanged"


def test_crds_kustomization_lists_every_crd():
    listed = yaml.safe_load((ROOT / "crds" / "kustomization.yaml").read_text())["resources"]
    assert sorted(listed) == sorted(p.name for p in (ROOT / "crds").glob("llmops.dev_*.yaml"))


def test_kustomize_matches_the_chart_render(kustomized):
    chart = helm.Chart.load(str(ROOT / "charts" / "llmops-operator"))
    rendered = chart.render(None, name="llmops-operator", namespace=NAMESPACE)
    from_chart = {}
    for path, text in rendered.items():
        if path.endswith("NOTES.txt"):
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                from_chart[key(doc)] = for_kustomize(doc)
    from_kustomize = {key(d): d for d in kustomized if d["kind"] not in {"CustomResourceDefinition", "Namespace"}}
    assert sorted(from_kustomize) == sorted(from_chart)
    for k, doc in from_chart.items():
        assert from_kustomize[k] == doc, f"{k} differs between the chart render and manifests/install"
    deployment = from_kustomize[("Deployment", NAMESPACE, "llmops-operator")]
    assert deployment["spec"]["template"]["spec"]["containers"][0]["args"][:2] == ["run", "--all-namespaces"]
    assert deployment["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "kustomize"
