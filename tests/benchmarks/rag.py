"""What retrieval adds to a request: query embedding plus search, against the predictor call alone, same run.

On CPU with the bundled all-MiniLM-L6-v2 and Milvus Lite (HNSW M=16, efConstruction=200, search ef=64, top 4):
- `embed`: the query embedding alone, with the encoder the transformer uses (backends/query_encoder.py: ONNX
  Runtime, one thread);
- `embed (sentence-transformers)`: the same through sentence-transformers and PyTorch, as the index was built;
- `retrieval (lite)`: the transformer's whole step for a Milvus Lite database, as servers/retrieval.Searcher runs
  it while requests come: embed, then search the held database's vectors in memory and read the winners' text;
- `search (snapshot)`: that search alone (backends/vector_snapshot.py);
- `search (Milvus Lite)`: Milvus Lite's own search on an open client, for comparison;
- `reopen (lite)`: the first search after an idle release: open the database, load the collection, check the
  snapshot, search (5 samples);
- `predictor`: one completion of 16 tokens from the sandbox predictor serving a tiny GPT-2, over HTTP;
- `addedVsPredictor`: the retrieval step's p50 and p99 as a share of the predictor call's, same run.

Each row carries the load average (1 minute) before and after it, and the CPU time of this process per call
(`cpu`; for `predictor`, only the client's): wall-clock figures mean little on a busy machine.

The index holds `--sizes` chunks: a few hundred real chunks of the repository's docs, embedded with the model,
and the rest unit vectors drawn around them (search cost depends on the count and the dimension, not on the
text; embedding 100k real chunks on two cores would take the whole run). Queries are questions about the docs.

Run: .venv/bin/python tests/benchmarks/rag.py [--sizes 10000,100000] [--queries 200]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "integration"))

from llmops_operator.backends import milvus  # noqa: E402
from llmops_operator.backends import vector_snapshot  # noqa: E402
from llmops_operator.backends.embedding import embed, load_model, load_query_encoder  # noqa: E402
from llmops_operator.builders.ingest import FIELDS  # noqa: E402
from llmops_operator.entrypoints.chunking import chunk_documents, read_documents  # noqa: E402
from llmops_operator.servers.retrieval import RetrievalConfig, Searcher  # noqa: E402

MODEL = "builtin:minilm"
QUESTIONS = ["How do I roll back a prompt release?", "What does a VectorIndex do when the model changes?",
             "How is drift measured on a service?", "Which index types can Milvus Lite build?",
             "What happens when a budget is exceeded?", "How does the guardrail redact personal data?",
             "Where is the cost of a training job shown?", "How do I run the sandbox?"]
INDEX = {"field_name": "vector", "index_type": "HNSW", "metric_type": "COSINE",
         "params": {"M": 16, "efConstruction": 200}}


def corpus(encoder, size: int, rng: np.random.Generator) -> tuple[list[dict], float]:
    """`size` rows: real doc chunks first, then unit vectors near them; and the seconds the index took to build."""
    chunks = chunk_documents(read_documents(f"file://{ROOT / 'docs'}", ["*.md"]), 800, 100)[:400]
    real = embed(encoder, [c.text for c in chunks], 64, True)
    base = real[rng.integers(0, len(real), size - len(real))]
    noise = rng.normal(0, 0.08, base.shape).astype(np.float32)
    synthetic = base + noise
    synthetic /= np.linalg.norm(synthetic, axis=1, keepdims=True)
    vectors = np.vstack([real, synthetic])
    texts = [c.text for c in chunks] + ["synthetic"] * (size - len(real))
    sources = [c.source for c in chunks] + ["synthetic.md"] * (size - len(real))
    return [{"id": f"{i:08x}", "vector": v.tolist(), "text": t, "source": s}
            for i, (v, t, s) in enumerate(zip(vectors, texts, sources))], len(real)


def build(uri: str, rows: list[dict]) -> float:
    started = time.perf_counter()
    with milvus.connect(uri) as client:
        milvus.ensure_collection(client, "bench_00000000", FIELDS, 384, INDEX, {milvus.OWNER_PROPERTY: "bench/bench"})
        for start in range(0, len(rows), 5000):
            milvus.upsert(client, "bench_00000000", rows[start:start + 5000])
        milvus.point_alias(client, "bench", "bench_00000000", "bench/bench")
        milvus.set_properties(client, "bench_00000000", {f"{milvus.PROPERTY_PREFIX}ingestedAt": "bench"})  # as ingest
        client.flush("bench_00000000")
        milvus.load(client, "bench")
        milvus.search(client, "bench", [rows[0]["vector"]], 4, FIELDS, {"ef": 64})  # builds the index
    return time.perf_counter() - started


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {"p50Ms": round(statistics.median(ordered) * 1000, 2),
            "p99Ms": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1000, 2)}


def timed(fn, times: int) -> dict[str, float]:
    """p50/p99 of `times` calls of fn(index), with the 1-minute load average before and after, and the CPU time
    this process spent per call (`cpu`: what a call costs when it has a core to itself; wall time on a busy
    machine adds the wait for one)."""
    load_before = os.getloadavg()[0]
    out, cpu = [], []
    for index in range(times):
        started, started_cpu = time.perf_counter(), time.process_time()
        fn(index)
        out.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
    load = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    return {**percentiles(out), "cpu": percentiles(cpu), "load": load}


def measure_index(encoder, uri: str, queries: int) -> dict[str, dict]:
    config = RetrievalConfig(index="bench/bench", uri=uri, alias="bench", fields=FIELDS, model=MODEL, dimension=384,
                             metric="COSINE", top_k=4, query_variable="question", max_query_chars=1024,
                             max_context_chars=8192, search_params={"ef": 64})
    searcher = Searcher(config)
    searcher.load()
    question = lambda i: QUESTIONS[i % len(QUESTIONS)]  # noqa: E731
    vectors = embed(encoder, QUESTIONS, 8, True)
    searcher.search(question(0))  # opens the database and reads the snapshot
    results = {"retrieval (lite)": timed(lambda i: searcher.search(question(i)), queries)}
    snapshot, client = searcher._snapshot, searcher._client
    results["search (snapshot)"] = timed(lambda i: vector_snapshot.hits(
        client, "bench", FIELDS, snapshot.nearest(vectors[i % len(vectors)], 4)), queries)
    results["search (Milvus Lite)"] = timed(
        lambda i: milvus.search(client, "bench", [vectors[i % len(vectors)].tolist()], 4, FIELDS, {"ef": 64}),
        queries)

    def reopened(index: int) -> None:
        searcher.release()
        searcher.search(question(index))
    results["reopen (lite)"] = timed(reopened, 5)
    searcher.release()
    started = time.perf_counter()
    with milvus.connect(uri) as fresh:
        milvus.load(fresh, "bench")
        vector_snapshot.read_snapshot(fresh, "bench", FIELDS, "COSINE")
    results["snapshotReadSeconds"] = round(time.perf_counter() - started, 2)
    return results


def measure_predictor(queries: int, tmp: Path) -> dict[str, float]:
    from model_servers import MODEL as SERVED, Server, free_port, save_tiny_gpt2, wait_ready

    model_dir = save_tiny_gpt2(tmp / "tiny")
    port = free_port()
    server = Server([sys.executable, "-m", "llmops_operator.servers.predictor", "--model_name", SERVED,
                     "--model_dir", str(model_dir), "--http_port", str(port), "--host", "127.0.0.1"], {},
                    tmp / "predictor.log")
    try:
        wait_ready(f"http://127.0.0.1:{port}/v1/models/{SERVED}", server.process, 300)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
            body = lambda i: {"model": SERVED, "prompt": QUESTIONS[i % len(QUESTIONS)], "max_tokens": 16}  # noqa: E731
            http.post("/openai/v1/completions", json=body(0))
            return timed(lambda i: http.post("/openai/v1/completions", json=body(i)).raise_for_status(), queries)
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    model, encoder = load_model(MODEL, 384), load_query_encoder(MODEL, 384)
    report: dict[str, object] = {"queries": args.queries, "queryEncoder": type(encoder).__name__}
    for index in range(5):  # warm up
        embed(encoder, [QUESTIONS[index % len(QUESTIONS)]], 1, True)
        embed(model, [QUESTIONS[index % len(QUESTIONS)]], 1, True)
    report["embed"] = timed(lambda i: embed(encoder, [QUESTIONS[i % len(QUESTIONS)]], 1, True), args.queries)
    report["embed (sentence-transformers)"] = timed(
        lambda i: embed(model, [QUESTIONS[i % len(QUESTIONS)]], 1, True), args.queries)
    rng = np.random.default_rng(7)
    with tempfile.TemporaryDirectory() as tmp:
        report["predictor"] = measure_predictor(args.queries, Path(tmp))
        print(json.dumps({k: report[k] for k in ("embed", "embed (sentence-transformers)", "predictor")}), flush=True)
        for size in (int(s) for s in args.sizes.split(",")):
            uri = str(Path(tmp) / f"bench-{size}.db")
            rows, real = corpus(model, size, rng)  # built as the ingest Job builds it
            measured = {"realChunks": real, "buildSeconds": round(build(uri, rows), 1),
                        **measure_index(encoder, uri, args.queries)}
            predictor = report["predictor"]
            measured["addedVsPredictor"] = {f"{p}": round(measured["retrieval (lite)"][p] / predictor[p], 3)
                                            for p in ("p50Ms", "p99Ms")}
            report[f"{size} chunks"] = measured
            print(json.dumps({size: report[f"{size} chunks"]}), flush=True)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
