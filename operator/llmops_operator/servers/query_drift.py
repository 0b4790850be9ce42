"""Query drift of a retrieval service: how far the live queries' embeddings moved from the reference queries'.

With spec.retrieval and spec.drift.metric embedding, the operator mounts the drift reference (JSON Lines, each
line's `text` a query) at LLMOPS_QUERY_REFERENCE. At load the transformer embeds up to MAX_REFERENCE of them with
the index's model; every live query's embedding (already computed for the search) joins a window of the last
WINDOW queries, and after each query the cosine distance between the two samples' mean vectors
(scoring/embedding_drift.py) is published as the gauge llmops_query_drift, with the window's size beside it.
The operator reads both into status.drift (feature queryEmbedding), where DriftDetected and spec.retrain act on it.
"""

from __future__ import annotations

import json
import os
import threading
from collections import deque
from pathlib import Path
from typing import Any

from prometheus_client import Gauge

REFERENCE_ENV = "LLMOPS_QUERY_REFERENCE"
MAX_REFERENCE = 1000
"""Reference lines embedded at most (the first ones): bounds the transformer's start-up time."""
MAX_REFERENCE_BYTES = 4 << 20
WINDOW = 512
"""Live queries the score is computed over (the most recent ones)."""

QUERY_DRIFT = Gauge("llmops_query_drift", "Cosine distance between the mean embedding of the last live queries and "
                    "that of the reference queries (0: same direction).")
QUERY_DRIFT_SAMPLES = Gauge("llmops_query_drift_samples", "Live queries the query drift is computed over.")


def reference_queries(path: Path, limit: int = MAX_REFERENCE) -> list[str]:
    """The `text` of each JSON line (others skipped), the first `limit`; ValueError when none is usable."""
    with path.open("rb") as handle:
        raw = handle.read(MAX_REFERENCE_BYTES).decode("utf-8", errors="replace")
    texts = []
    for line in raw.splitlines():
        try:
            record = json.loads(line) if line.strip() else None
        except ValueError:
            continue
        if isinstance(record, dict) and isinstance(record.get("text"), str) and record["text"].strip():
            texts.append(record["text"])
            if len(texts) >= limit:
                break
    if not texts:
        raise ValueError(f"{REFERENCE_ENV} {path}: no JSON line with a non-empty text field")
    return texts


class QueryDrift:
    """The reference queries' vectors and a window of live ones; `observe` runs in the retrieval worker."""

    def __init__(self, reference: Any, window: int = WINDOW):
        self.reference = reference
        self.live: deque = deque(maxlen=window)
        self._lock = threading.Lock()

    def observe(self, vector: Any) -> float:
        import numpy as np

        from llmops_operator.scoring.embedding_drift import centroid_distance

        with self._lock:
            self.live.append(np.asarray(vector, dtype=np.float64).ravel())
            score = centroid_distance(self.reference, np.stack(self.live))
            QUERY_DRIFT.set(score)
            QUERY_DRIFT_SAMPLES.set(len(self.live))
        return score


def load_query_drift(encoder: Any, normalize: bool, environ: Any = os.environ) -> QueryDrift | None:
    """The query drift monitor when LLMOPS_QUERY_REFERENCE is set, its reference embedded with `encoder`."""
    from llmops_operator.backends.embedding import embed

    path = environ.get(REFERENCE_ENV)
    if not path:
        return None
    return QueryDrift(embed(encoder, reference_queries(Path(path)), 32, normalize))
