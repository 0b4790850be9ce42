"""Embedding drift between two samples of vectors (pure numpy).

Two signals, both computed in one vectorised pass:
- centroid: cosine distance between the mean vectors of the two samples (0 = same direction);
  it moves when the corpus as a whole talks about something else.
- PSI per dimension: population stability index of each coordinate, binned at the reference's
  quantiles; the largest one names the dimension that moved most.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

EPSILON = 1e-6
"""Floor of a bin's share, so an empty bin gives a large but finite PSI term."""


@dataclass(frozen=True)
class EmbeddingDrift:
    centroid_distance: float
    max_psi: float
    max_psi_dimension: int
    reference_size: int
    current_size: int


def _matrix(vectors: np.ndarray, name: str) -> np.ndarray:
    matrix = np.asarray(vectors, dtype=np.float64)
    if matrix.ndim != 2 or len(matrix) == 0:
        raise ValueError(f"{name}: expected a non-empty (n, dimension) array, got shape {matrix.shape}")
    return matrix


def centroid_distance(reference: np.ndarray, current: np.ndarray) -> float:
    a, b = _matrix(reference, "reference").mean(axis=0), _matrix(current, "current").mean(axis=0)
    norms = np.linalg.norm(a) * np.linalg.norm(b)
    return float(max(0.0, 1.0 - a @ b / norms)) if norms > 0 else 0.0


def psi_per_dimension(reference: np.ndarray, current: np.ndarray, bins: int = 10) -> np.ndarray:
    """PSI of every column of `current` against the same column of `reference`, bins at the reference's quantiles."""
    ref, cur = _matrix(reference, "reference"), _matrix(current, "current")
    if ref.shape[1] != cur.shape[1]:
        raise ValueError(f"dimension mismatch: reference has {ref.shape[1]}, current has {cur.shape[1]}")
    inner = np.quantile(ref, np.linspace(0, 1, bins + 1)[1:-1], axis=0).T  # (dimension, bins - 1)
    # Bin index of each value per column: how many inner edges lie at or below it.
    ref_idx = (ref.T[:, :, None] >= inner[:, None, :]).sum(axis=2)
    cur_idx = (cur.T[:, :, None] >= inner[:, None, :]).sum(axis=2)
    offsets = np.arange(ref.shape[1])[:, None] * bins
    count = lambda idx: np.bincount((idx + offsets).ravel(), minlength=ref.shape[1] * bins).reshape(-1, bins)  # noqa: E731
    p = np.maximum(count(ref_idx) / len(ref), EPSILON)
    q = np.maximum(count(cur_idx) / len(cur), EPSILON)
    return ((q - p) * np.log(q / p)).sum(axis=1)


def embedding_drift(reference: np.ndarray, current: np.ndarray, bins: int = 10) -> EmbeddingDrift:
    psi = psi_per_dimension(reference, current, bins)
    worst = int(np.argmax(psi))
    return EmbeddingDrift(centroid_distance(reference, current), float(psi[worst]), worst, len(reference),
                          len(current))
