"""VectorIndex ingest throughput and index recall, on Milvus Lite with all-MiniLM-L6-v2 on CPU.

Measured in one run, on the same synthetic corpus (documents made of the repository's docs/ words):
- end to end: the ingest runtime (read, chunk, embed, upsert, alias swap, report) on a fresh
  database, in chunks per second, with the model already loaded;
- the parts: embedding alone, and a plain pymilvus insert of the same precomputed vectors into a
  collection with the same index (what the runtime adds on top of these two is its overhead);
- a re-ingest of the unchanged source (nothing to embed);
- recall@10 of the collection's index against exact (numpy) cosine search, for held-out queries.

Run: .venv/bin/python tests/benchmarks/vector_ingest.py [--documents 300] [--index HNSW]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import tempfile
import time
from pathlib import Path

import numpy as np

from llmops_operator.api.v1alpha1 import VectorIndex
from llmops_operator.backends import milvus
from llmops_operator.builders.ingest import FIELDS, ingest_config
from llmops_operator.core.contract import parse
from llmops_operator.entrypoints import ingest as runtime
from llmops_operator.entrypoints.chunking import chunk_documents, read_documents
from llmops_operator.backends.embedding import embed, load_model
from llmops_operator.entrypoints.report import Reporter

ROOT = Path(__file__).resolve().parents[2]
MODEL = "sentence-transformers/all-MiniLM-L6-v2"
INDEX_PARAMS = {"HNSW": {"M": 16, "efConstruction": 200}, "IVF_FLAT": {"nlist": 64}, "FLAT": {}, "AUTOINDEX": {}}


def write_corpus(root: Path, documents: int, words_per_document: int, seed: int = 7) -> None:
    words = re.findall(r"[A-Za-z][A-Za-z-]+", " ".join(p.read_text() for p in sorted((ROOT / "docs").glob("*.md"))))
    rng = random.Random(seed)
    for i in range(documents):
        start = rng.randrange(len(words) - words_per_document)
        text = " ".join(words[start:start + words_per_document])
        (root / f"doc-{i:04d}.md").write_text(f"# Document {i}\n\n{text}\n")


def vector_index(tmp: Path, index_type: str, database: str) -> VectorIndex:
    spec = {"milvus": {"uri": str(tmp / database), "collection": "bench"},
            "embedding": {"model": MODEL, "dimension": 384, "batchSize": 64},
            "index": {"type": index_type, "params": INDEX_PARAMS[index_type] or None},
            "source": {"uri": f"file://{tmp / 'docs'}", "include": ["*.md"], "chunking": {"size": 512, "overlap": 64}}}
    if not spec["index"]["params"]:
        del spec["index"]["params"]
    return parse(VectorIndex, {"apiVersion": "llmops.dev/v1alpha1", "kind": "VectorIndex",
                               "metadata": {"name": "bench", "namespace": "bench"}, "spec": spec})


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def plain_insert(uri: str, name: str, vectors: np.ndarray, chunks: list, index: dict) -> float:
    """Seconds to create the collection with its index and insert precomputed vectors with pymilvus."""
    def insert() -> None:
        with milvus.connect(uri) as client:
            milvus.ensure_collection(client, name, FIELDS, vectors.shape[1], index,
                                     {milvus.OWNER_PROPERTY: "benchmark/plain-insert"})
            for start in range(0, len(chunks), runtime.UPSERT_BATCH):
                end = start + runtime.UPSERT_BATCH
                client.insert(name, [{"id": c.id, "vector": v.tolist(), "text": c.text, "source": c.source}
                                     for c, v in zip(chunks[start:end], vectors[start:end])])
    return timed(insert)[1]


def recall_at_10(uri: str, alias: str, corpus: np.ndarray, ids: list[str], queries: np.ndarray, ef: int) -> float:
    exact = np.argsort(-(queries @ corpus.T), axis=1)[:, :10]
    with milvus.connect(uri) as client:
        milvus.load(client, milvus.served_collection(client, alias))
        hits = client.search(alias, data=queries.tolist(), limit=10, anns_field="vector",
                             search_params={"params": {"ef": ef, "nprobe": 16}})
    found = [{h["id"] for h in row} for row in hits]
    return float(np.mean([len(f & {ids[j] for j in row}) / 10 for f, row in zip(found, exact)]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=300)
    parser.add_argument("--words", type=int, default=300, help="words per document")
    parser.add_argument("--index", default="HNSW", choices=sorted(INDEX_PARAMS))
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="vector-bench-") as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "docs").mkdir()
        write_corpus(tmp / "docs", args.documents, args.words)
        obj = vector_index(tmp, args.index, "ingest.db")
        config = ingest_config(obj)
        encoder, load_s = timed(lambda: load_model(MODEL, 384))

        report, ingest_s = timed(lambda: runtime.ingest(config, Reporter(None)))
        chunks_n = report["vectors"]
        again, reingest_s = timed(lambda: runtime.ingest(config, Reporter(None)))

        chunks = chunk_documents(read_documents(f"file://{tmp / 'docs'}", ["*.md"]), 512, 64)
        vectors, embed_s = timed(lambda: embed(encoder, [c.text for c in chunks], 64, normalize=True))
        insert_s = plain_insert(str(tmp / "plain.db"), "plain", vectors, chunks, config["index"])

        rng = np.random.default_rng(1)
        picks = rng.choice(len(chunks), size=min(args.queries, len(chunks)), replace=False)
        query_texts = [" ".join(chunks[i].text.split()[5:25]) for i in picks]  # a fragment of a chunk, not the chunk
        queries = embed(encoder, query_texts, 64, normalize=True)
        ids = [c.id for c in chunks]
        recall = {ef: recall_at_10(config["milvus"]["uri"], "bench", vectors, ids, queries, ef) for ef in (16, 64)}

    print(json.dumps({
        "index": args.index, "documents": args.documents, "chunks": chunks_n, "modelLoadSeconds": round(load_s, 2),
        "endToEnd": {"seconds": round(ingest_s, 2), "chunksPerSecond": round(chunks_n / ingest_s, 1)},
        "embeddingOnly": {"seconds": round(embed_s, 2), "chunksPerSecond": round(len(chunks) / embed_s, 1)},
        "plainPymilvusInsert": {"seconds": round(insert_s, 2), "rowsPerSecond": round(len(chunks) / insert_s, 1)},
        "runtimeOverheadSeconds": round(ingest_s - embed_s - insert_s, 2),
        "reingestUnchanged": {"seconds": round(reingest_s, 2), "embedded": again["changes"]["embedded"]},
        "recallAt10": {f"ef={ef}": round(r, 4) for ef, r in recall.items()},
    }, indent=2))


if __name__ == "__main__":
    main()
