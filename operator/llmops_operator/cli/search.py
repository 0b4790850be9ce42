"""Nearest chunks of a VectorIndex to a query: what `llmops search` shows (embeds the query like the ingest did)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llmops_operator.backends import milvus
from llmops_operator.builders.ingest import FIELDS
from llmops_operator.backends.embedding import embed, load_model


@dataclass(frozen=True)
class Target:
    """Where a VectorIndex's vectors live and how its queries are embedded."""

    uri: str
    alias: str
    model: str
    dimension: int
    metric: str = "COSINE"


def search(target: Target, query: str, k: int = 5, token: str | None = None,
           pvc_root: str | None = None) -> list[dict[str, Any]]:
    """The k nearest chunks to `query` through the alias: [{id, distance, source, text}], nearest first."""
    encoder = load_model(target.model, target.dimension)
    vector = embed(encoder, [query], 1, normalize=target.metric == "COSINE")[0]
    with milvus.connect(target.uri, token, pvc_root) as client:
        collection = milvus.served_collection(client, target.alias)
        if collection is None:
            raise milvus.MilvusError(f"alias {target.alias} does not exist in {target.uri}: "
                                     "the first ingest has not finished")
        milvus.load(client, collection)
        return milvus.search(client, target.alias, [vector.tolist()], k, FIELDS)[0]


def target_of(body: dict[str, Any]) -> Target:
    """The Target of a VectorIndex as the API returns it; ValueError until its first ingest has finished."""
    from llmops_operator.api.v1alpha1.vectorindex import VectorIndex
    from llmops_operator.core.contract import parse

    obj = parse(VectorIndex, body)
    status = body.get("status") or {}
    if not status.get("physicalCollection"):
        raise ValueError(f"VectorIndex {obj.namespace}/{obj.name} has no ingested collection yet "
                         f"(phase {status.get('phase', 'unknown')})")
    spec = obj.spec.embedding
    return Target(obj.spec.milvus.uri, status.get("collection") or obj.collection, spec.model, spec.dimension,
                  spec.metric)


def format_hits(hits: list[dict[str, Any]], width: int = 160) -> str:
    """One block per hit: rank, distance, source, then the start of the chunk's text on one line."""
    lines = []
    for rank, hit in enumerate(hits, 1):
        text = " ".join(hit["text"].split())
        lines.append(f"{rank}. {hit['distance']:.4f}  {hit['source']}\n   {text[:width]}{'…' if len(text) > width else ''}")
    return "\n".join(lines)
