"""status.retrieval from the guardrail runtime's retrieval series (pure; servers/request_metrics.py names them).

Counters are totals over the window the sample covers, as for the other serving figures: latency p50/p99 from
the llmops_retrieval_latency_seconds histogram, the empty-retrieval rate from llmops_retrieval_requests by
outcome (errors left out: they retrieved nothing and say nothing about the index), the mean top-1 similarity
from its sum and the count of scored retrievals, dropped chunks and embedding calls from their counters.
"""

from __future__ import annotations

from typing import Any

from llmops_operator.scoring.serving_metrics import ServingSample, quantile

LATENCY_HISTOGRAM = "llmops_retrieval_latency_seconds"
RETRIEVALS = "llmops_retrieval_requests_total"
TOP_SCORE = "llmops_retrieval_top_score_total"
SCORED = "llmops_retrieval_scored_total"
CHUNKS = "llmops_retrieval_chunks_total"
EMBEDDINGS = "llmops_embedding_calls_total"
LABELLED = {RETRIEVALS: "outcome", CHUNKS: "fate"}
"""Retrieval counters with a label, and the label that keys them in ServingSample.retrieval."""
QUERY_DRIFT = "llmops_query_drift"
QUERY_DRIFT_SAMPLES = "llmops_query_drift_samples"
UNLABELLED = (TOP_SCORE, SCORED, EMBEDDINGS, QUERY_DRIFT, QUERY_DRIFT_SAMPLES)


def retrieval_key(name: str, labels: dict[str, str]) -> str | None:
    """The ServingSample.retrieval key of one sample (name, or name:label value); None for other series."""
    if name in LABELLED:
        return f"{name}:{labels.get(LABELLED[name], '')}"
    return name if name in UNLABELLED else None


def retrieval_block(sample: ServingSample | None, vector_index: str | None) -> dict[str, Any]:
    """status.retrieval: what the sample measured (nothing before the first retrieval), and the index searched."""
    block: dict[str, Any] = {"vectorIndex": vector_index} if vector_index else {}
    if sample is None:
        return block
    counts = sample.retrieval
    outcomes = {key.partition(":")[2]: value for key, value in counts.items() if key.startswith(RETRIEVALS + ":")}
    judged = sum(v for outcome, v in outcomes.items() if outcome != "error")
    block["retrievals"] = int(sum(outcomes.values()))
    buckets = sample.histograms.get(LATENCY_HISTOGRAM) or []
    if (p50 := quantile(buckets, 0.5)) is not None:
        block["p50Ms"] = round(p50 * 1000, 1)
        block["p99Ms"] = round(quantile(buckets, 0.99) * 1000, 1)
    if judged:
        block["emptyRate"] = round(outcomes.get("empty", 0.0) / judged, 4)
    if counts.get(SCORED):
        block["meanTopScore"] = round(counts.get(TOP_SCORE, 0.0) / counts[SCORED], 4)
    if f"{CHUNKS}:dropped" in counts:
        block["droppedChunks"] = int(counts[f"{CHUNKS}:dropped"])
    if EMBEDDINGS in counts:
        block["embeddingCalls"] = int(counts[EMBEDDINGS])
    return block


def query_drift(sample: ServingSample | None) -> tuple[float, int] | None:
    """(score, live queries) of the runtime's query drift gauges; None before its first query (a restarted
    transformer starts again with none)."""
    if sample is None or not sample.retrieval.get(QUERY_DRIFT_SAMPLES):
        return None
    return sample.retrieval.get(QUERY_DRIFT, 0.0), int(sample.retrieval[QUERY_DRIFT_SAMPLES])


def query_drift_block(score: float, samples: int, threshold: float, window: str | None, evaluated_at: str,
                      min_samples: int) -> dict[str, Any]:
    """status.drift for query drift: metric embedding, feature queryEmbedding; drifted only from enough queries."""
    block: dict[str, Any] = {"metric": "embedding", "threshold": threshold, "feature": "queryEmbedding",
                             "score": round(score, 6), "samples": samples, "evaluatedAt": evaluated_at,
                             "drifted": score > threshold and samples >= min_samples}
    if window:
        block["window"] = window
    return block


def kept_query_drift(previous: dict[str, Any] | None, threshold: float, window: str | None,
                     min_samples: int) -> dict[str, Any] | None:
    """The last query drift evaluation re-judged against the current settings, while no query has come since the
    transformer (re)started; None when the last evaluation was not a query drift one."""
    if not previous or previous.get("feature") != "queryEmbedding" or previous.get("score") is None:
        return None
    return query_drift_block(float(previous["score"]), int(previous.get("samples") or 0), threshold, window,
                             previous.get("evaluatedAt") or "", min_samples)
