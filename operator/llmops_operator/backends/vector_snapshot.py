"""The vectors of a held Milvus Lite collection in memory, searched exactly with one matrix-vector product.

Milvus Lite searches in Python: before its faiss index runs, every search walks all the collection's rows to mask
deleted and superseded ones, so a search costs time linear in the rows (about 7 ms at 10k rows, 200 ms at 100k on
two cores). A retrieval service holds its Lite database alone while requests come (no other process can open it),
so the rows cannot change while it is held: the service reads the vectors once when it opens the database and
searches them itself (about 1 ms of CPU at 10k rows of 384 dimensions, 8 ms at 100k), then fetches the winners' text and source from Milvus by primary key. The search is exact
(a brute-force inner product), so it finds at least what the collection's HNSW index finds.

A snapshot is keyed by the collection the alias serves, its `llmops.ingestedAt` and its row count: reopening the
database after an idle release reuses it unless an ingest ran in between. Only similarity metrics (COSINE, whose
stored vectors are unit length, and IP) are served this way, and only collections of at most MAX_ROWS rows
($LLMOPS_SNAPSHOT_MAX_ROWS; 4 bytes a dimension a row: 200k rows of 384 dimensions hold 307 MB), so what a
tenant indexes bounds the memory. Anything else is searched by Milvus.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from llmops_operator.backends import milvus

MAX_ROWS = int(os.environ.get("LLMOPS_SNAPSHOT_MAX_ROWS", "200000"))
SNAPSHOT_METRICS = ("COSINE", "IP")


@dataclass(frozen=True)
class VectorSnapshot:
    key: tuple[str, str | None, int]
    """(physical collection, llmops.ingestedAt, rows) when it was read."""
    ids: list[str]
    vectors: np.ndarray
    """float32, one row per id."""

    def nearest(self, vector: np.ndarray, limit: int) -> list[tuple[str, float]]:
        """The `limit` ids of highest inner product with `vector`, best first, with their scores."""
        if not self.ids or limit <= 0:
            return []
        # einsum's own single-threaded loop, not BLAS: a BLAS thread pool on a busy two-core pod waits for its
        # threads, and some OpenBLAS builds pick a slow kernel for one vector (4x the CPU at 10k rows, measured)
        scores = np.einsum("ij,j->i", self.vectors, np.asarray(vector, dtype=np.float32).reshape(-1))
        count = min(limit, len(self.ids))
        top = np.argpartition(-scores, count - 1)[:count]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(self.ids[i], float(scores[i])) for i in top]


def snapshot_key(client: Any, alias: str) -> tuple[str, str | None, int] | None:
    """What identifies the rows `alias` serves now; None when the alias serves nothing."""
    collection = milvus.served_collection(client, alias)
    if collection is None:
        return None
    ingested = milvus.properties(client, collection).get(f"{milvus.PROPERTY_PREFIX}ingestedAt")
    return collection, ingested, milvus.row_count(client, collection)


def read_snapshot(client: Any, alias: str, fields: Mapping[str, str], metric: str,
                  previous: VectorSnapshot | None = None, max_rows: int = MAX_ROWS) -> VectorSnapshot | None:
    """The alias's vectors in memory (`previous` when its key still holds); None where Milvus should search."""
    if metric not in SNAPSHOT_METRICS:
        return None
    key = snapshot_key(client, alias)
    if key is None or key[2] > max_rows:
        return None
    if previous is not None and previous.key == key and key[1] is not None:
        return previous
    ids: list[str] = []
    vectors: list[list[float]] = []
    for row in milvus.iterate(client, alias, [fields["primary"], fields["vector"]]):
        ids.append(str(row[fields["primary"]]))
        vectors.append(row[fields["vector"]])
    matrix = np.asarray(vectors, dtype=np.float32).reshape(len(ids), -1)
    return VectorSnapshot(key, ids, matrix)


def hits(client: Any, alias: str, fields: Mapping[str, str], nearest: list[tuple[str, float]]) -> list[dict]:
    """milvus.search's hits for the snapshot's nearest ids: their text and source read by primary key."""
    if not nearest:
        return []
    rows = client.query(alias, ids=[i for i, _ in nearest], output_fields=[fields["source"], fields["text"]])
    by_id = {str(row[fields["primary"]]): row for row in rows}
    return [{"id": i, "distance": score, "source": by_id[i][fields["source"]], "text": by_id[i][fields["text"]]}
            for i, score in nearest if i in by_id]
