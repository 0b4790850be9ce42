"""Drift of tabular features between a reference sample and a current window (pure numpy).

Numeric features are binned at the reference's quantiles (10 bins by default: each holds a tenth
of the reference), plus one bin for missing values, so a jump in the missing rate counts as drift.
Categorical features get one bin per reference category (the most frequent ones), one for values
the reference did not have and one for missing values. Every feature of a kind is scored in one
call on a 2-D array: binning and scoring are whole-array numpy operations, not a Python loop
over features (fitting a reference takes its quantiles one contiguous column at a time).

Scores, with p the reference's and q the current window's bin shares, both floored at EPSILON
and renormalised:
- psi: population stability index, sum((q - p) * ln(q / p)). Rule of thumb: < 0.1 stable,
  0.1-0.2 moderate, > 0.2 drifted.
- js: Jensen-Shannon distance, sqrt(JSD) with base-2 logarithms, in [0, 1].

A fitted reference keeps only edges, categories and shares, so it is small enough to store as
JSON next to a registry and to score later windows against.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

METHODS = ("psi", "js", "ks")
DEFAULT_BINS = 10
MAX_CATEGORIES = 20
EPSILON = 1e-4
"""Floor of a bin's share: an empty bin gives a large but finite PSI term. 1e-4 is the usual choice for PSI."""
MAX_BINS = 100
"""Bin indices are held as int8."""
CHUNK_ROWS = 4_096
"""Rows binned at a time: the temporary matrices stay in cache (4096 x 100 features: 3 MB of float64)."""


@dataclass(frozen=True)
class NumericReference:
    """Quantile edges and bin shares of numeric features; the last share is the missing-value bin."""

    names: tuple[str, ...]
    edges: np.ndarray
    """(features, bins - 1) inner edges: bin k holds edges[k-1] <= x < edges[k]."""
    shares: np.ndarray
    """(features, bins + 1) reference shares, before smoothing."""
    size: int


@dataclass(frozen=True)
class CategoricalReference:
    """Categories and bin shares of categorical features: one bin per category, then other, then missing."""

    names: tuple[str, ...]
    categories: tuple[tuple[str, ...], ...]
    shares: np.ndarray
    """(features, max categories + 2) reference shares; bins past a feature's own categories stay empty."""
    size: int


@dataclass(frozen=True)
class DriftDetected:
    """A feature whose score is above the threshold."""

    feature: str
    score: float
    threshold: float
    method: str

    def __str__(self) -> str:
        return f"{self.feature}: {self.method} {self.score:.3f} > {self.threshold:g}"


def _matrix(values: Any, name: str) -> np.ndarray:
    matrix = np.asarray(values, dtype=np.float64)
    if matrix.ndim == 1:
        matrix = matrix[:, None]
    if matrix.ndim != 2 or matrix.shape[0] == 0:
        raise ValueError(f"{name}: expected a non-empty (rows, features) array, got shape {matrix.shape}")
    return matrix


def _names(names: Sequence[str] | None, count: int, what: str) -> tuple[str, ...]:
    if names is None:
        return tuple(f"f{i}" for i in range(count))
    if len(names) != count:
        raise ValueError(f"{what}: {len(names)} names for {count} features")
    return tuple(names)


def quantile_edges(reference: np.ndarray, bins: int = DEFAULT_BINS) -> np.ndarray:
    """(features, bins - 1) inner edges at the reference's 1/bins ... (bins-1)/bins quantiles, missing values ignored.

    One column at a time: np.quantile along axis 0 of a row-major matrix reads with a stride and
    is slower than a loop of contiguous column copies; the reference is fitted once, so this is
    not the hot path.
    """
    if not 2 <= bins <= MAX_BINS:
        raise ValueError(f"bins: between 2 and {MAX_BINS}, got {bins}")
    levels = np.linspace(0.0, 1.0, bins + 1)[1:-1]
    edges = np.empty((reference.shape[1], bins - 1))
    for j in range(reference.shape[1]):
        column = reference[:, j]
        present = column[~np.isnan(column)]
        # A feature missing everywhere has no edges: its values land in bin 0 or the missing bin.
        edges[j] = np.quantile(present, levels) if len(present) else np.inf
    return edges


def bin_counts(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """(features, bins + 1) counts of each feature's values per bin; the last bin counts missing values.

    All features at once, a block of rows at a time: bin index = how many inner edges lie at or
    below the value, summed over bins - 1 whole-block comparisons into an int8 matrix, then one
    bincount over (feature, bin) pairs.
    """
    rows, features = values.shape
    if edges.shape[0] != features:
        raise ValueError(f"values have {features} features, the reference has {edges.shape[0]}")
    bins = edges.shape[1] + 1
    offsets = np.arange(features) * (bins + 1)
    counts = np.zeros(features * (bins + 1), dtype=np.int64)
    for start in range(0, rows, CHUNK_ROWS):
        chunk = values[start:start + CHUNK_ROWS]
        index = np.zeros(chunk.shape, dtype=np.int8)
        for k in range(edges.shape[1]):
            index += chunk >= edges[:, k]
        index[np.isnan(chunk)] = bins
        counts += np.bincount((index + offsets).ravel(), minlength=counts.size)
    return counts.reshape(features, bins + 1)


def fit_numeric(reference: Any, names: Sequence[str] | None = None, bins: int = DEFAULT_BINS) -> NumericReference:
    """The reference distribution of numeric features: a (rows, features) array, one column per name."""
    matrix = _matrix(reference, "reference")
    edges = quantile_edges(matrix, bins)
    return NumericReference(_names(names, matrix.shape[1], "reference"), edges,
                            bin_counts(matrix, edges) / len(matrix), len(matrix))


def numeric_shares(reference: NumericReference, current: Any) -> np.ndarray:
    """(features, bins + 1) shares of the current window in the reference's bins."""
    matrix = _matrix(current, "current")
    return bin_counts(matrix, reference.edges) / len(matrix)


def _text(value: Any) -> str | None:
    """A categorical value as text; None for missing (None, NaN)."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    return str(value)


def _categorical_columns(columns: Mapping[str, Sequence[Any]], what: str) -> dict[str, np.ndarray]:
    encoded = {}
    for name, column in columns.items():
        encoded[name] = np.array([_text(v) for v in column], dtype=object)
    lengths = {len(c) for c in encoded.values()}
    if not encoded or len(lengths) != 1 or 0 in lengths:
        raise ValueError(f"{what}: expected non-empty columns of equal length, got lengths {sorted(lengths)}")
    return encoded


def _codes(column: np.ndarray, categories: tuple[str, ...], width: int) -> np.ndarray:
    """Bin of each value: its category's position, width - 2 for other values, width - 1 for missing."""
    lookup = {c: i for i, c in enumerate(categories)}
    other, missing = width - 2, width - 1
    return np.fromiter((missing if v is None else lookup.get(v, other) for v in column), dtype=np.int64,
                       count=len(column))


def _categorical_shares(encoded: Mapping[str, np.ndarray], categories: Sequence[tuple[str, ...]],
                        width: int) -> np.ndarray:
    codes = np.stack([_codes(encoded[name], cats, width) for name, cats in zip(encoded, categories)])
    offsets = np.arange(len(codes))[:, None] * width
    counts = np.bincount((codes + offsets).ravel(), minlength=len(codes) * width).reshape(len(codes), width)
    return counts / codes.shape[1]


def fit_categorical(columns: Mapping[str, Sequence[Any]], max_categories: int = MAX_CATEGORIES) -> CategoricalReference:
    """The reference distribution of categorical features: their most frequent values (ties by value)."""
    encoded = _categorical_columns(columns, "reference")
    categories = []
    for column in encoded.values():
        present = column[column != None]  # noqa: E711 - elementwise on an object array
        values, counts = np.unique(present.astype(str), return_counts=True) if len(present) else ([], [])
        ranked = sorted(zip(values, counts), key=lambda vc: (-vc[1], vc[0]))[:max_categories]
        categories.append(tuple(str(v) for v, _ in ranked))
    width = max(len(c) for c in categories) + 2
    return CategoricalReference(tuple(encoded), tuple(categories), _categorical_shares(encoded, categories, width),
                                len(next(iter(encoded.values()))))


def categorical_bins(reference: CategoricalReference) -> np.ndarray:
    """Which bins of each feature are its own (categories, other, missing) rather than padding."""
    width = reference.shares.shape[1]
    position = np.arange(width)[None, :]
    own = np.array([len(c) for c in reference.categories])[:, None]
    return (position < own) | (position >= width - 2)


def categorical_shares(reference: CategoricalReference, columns: Mapping[str, Sequence[Any]]) -> np.ndarray:
    """(features, width) shares of the current window in the reference's categories."""
    missing = [n for n in reference.names if n not in columns]
    if missing:
        raise ValueError(f"current: no column for categorical features {missing}")
    encoded = _categorical_columns({n: columns[n] for n in reference.names}, "current")
    return _categorical_shares(encoded, reference.categories, reference.shares.shape[1])


def smooth(shares: np.ndarray, epsilon: float = EPSILON, valid: np.ndarray | None = None) -> np.ndarray:
    """Floor every share at epsilon and renormalise each row to sum to one.

    Bins outside `valid` (a boolean mask shaped like `shares`: padding of features with fewer
    categories than the widest) are left out of the sum and set to 1 afterwards, which makes
    their PSI and JS terms exactly zero.
    """
    floored = np.maximum(np.asarray(shares, dtype=np.float64), epsilon)
    if valid is None:
        return floored / floored.sum(axis=-1, keepdims=True)
    floored = np.where(valid, floored, 0.0)
    return np.where(valid, floored / floored.sum(axis=-1, keepdims=True), 1.0)


def psi(reference: np.ndarray, current: np.ndarray, epsilon: float = EPSILON,
        valid: np.ndarray | None = None) -> np.ndarray:
    """Population stability index of each row (feature) of two share matrices."""
    p, q = smooth(reference, epsilon, valid), smooth(current, epsilon, valid)
    return ((q - p) * np.log(q / p)).sum(axis=-1)


def js_distance(reference: np.ndarray, current: np.ndarray, epsilon: float = EPSILON,
                valid: np.ndarray | None = None) -> np.ndarray:
    """Jensen-Shannon distance (base 2, between 0 and 1) of each row (feature) of two share matrices."""
    p, q = smooth(reference, epsilon, valid), smooth(current, epsilon, valid)
    m = (p + q) / 2
    divergence = 0.5 * (p * np.log2(p / m)).sum(axis=-1) + 0.5 * (q * np.log2(q / m)).sum(axis=-1)
    return np.sqrt(np.maximum(divergence, 0.0))


def ks_statistic(reference: np.ndarray, current: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """Kolmogorov-Smirnov statistic of each row on the shared bins: the largest gap between the two CDFs.

    On the reference's quantile bins this is the exact statistic evaluated at the bin edges (a lower
    bound of the continuous one, tight as bins get finer); no smoothing is needed."""
    p, q = np.asarray(reference, dtype=np.float64), np.asarray(current, dtype=np.float64)
    if valid is not None:
        p, q = np.where(valid, p, 0.0), np.where(valid, q, 0.0)
    p = p / np.maximum(p.sum(axis=-1, keepdims=True), EPSILON)
    q = q / np.maximum(q.sum(axis=-1, keepdims=True), EPSILON)
    return np.abs(np.cumsum(p, axis=-1) - np.cumsum(q, axis=-1)).max(axis=-1)


def score(reference: np.ndarray, current: np.ndarray, method: str, valid: np.ndarray | None = None) -> np.ndarray:
    """Per-feature drift scores of two share matrices by `method` (psi, js or ks)."""
    if method == "psi":
        return psi(reference, current, valid=valid)
    if method == "js":
        return js_distance(reference, current, valid=valid)
    if method == "ks":
        return ks_statistic(reference, current, valid=valid)
    raise ValueError(f"method: expected one of {', '.join(METHODS)}, got {method!r}")


def numeric_drift(reference: NumericReference, current: Any, method: str = "psi") -> dict[str, float]:
    """Score of every numeric feature of `current` ((rows, features), columns in the reference's order)."""
    scores = score(reference.shares, numeric_shares(reference, current), method)
    return dict(zip(reference.names, scores.tolist()))


def categorical_drift(reference: CategoricalReference, columns: Mapping[str, Sequence[Any]],
                      method: str = "psi") -> dict[str, float]:
    scores = score(reference.shares, categorical_shares(reference, columns), method, categorical_bins(reference))
    return dict(zip(reference.names, scores.tolist()))


def detect(scores: Mapping[str, float], threshold: float, method: str) -> list[DriftDetected]:
    """Features scoring above the threshold, worst first."""
    if threshold <= 0:
        raise ValueError(f"threshold: must be positive, got {threshold}")
    hits = [DriftDetected(name, float(value), threshold, method) for name, value in scores.items() if value > threshold]
    return sorted(hits, key=lambda hit: -hit.score)


def worst(scores: Mapping[str, float]) -> tuple[str, float] | None:
    """The feature with the largest score (first in order on ties); None for no scores."""
    if not scores:
        return None
    name = max(scores, key=lambda n: scores[n])
    return name, float(scores[name])


def drift_status(scores: Mapping[str, float], method: str, threshold: float, window: str | None,
                 evaluated_at: str) -> dict[str, Any]:
    """The status drift block (api/v1alpha1/common.DriftStatus, camelCase) for these scores."""
    top = worst(scores)
    drifted = bool(detect(scores, threshold, method))
    block: dict[str, Any] = {"metric": method, "threshold": threshold, "drifted": drifted, "evaluatedAt": evaluated_at}
    if top:
        block.update(feature=top[0], score=round(top[1], 6))
    if window:
        block["window"] = window
    return block


def numeric_to_json(reference: NumericReference) -> dict[str, Any]:
    edges = [[None if np.isinf(e) else float(e) for e in row] for row in reference.edges]
    return {"names": list(reference.names), "edges": edges, "shares": reference.shares.tolist(), "size": reference.size}


def numeric_from_json(data: Mapping[str, Any]) -> NumericReference:
    edges = np.array([[np.inf if e is None else e for e in row] for row in data["edges"]], dtype=np.float64)
    return NumericReference(tuple(data["names"]), edges.reshape(len(data["names"]), -1),
                            np.asarray(data["shares"], dtype=np.float64), int(data["size"]))


def categorical_to_json(reference: CategoricalReference) -> dict[str, Any]:
    return {"names": list(reference.names), "categories": [list(c) for c in reference.categories],
            "shares": reference.shares.tolist(), "size": reference.size}


def categorical_from_json(data: Mapping[str, Any]) -> CategoricalReference:
    return CategoricalReference(tuple(data["names"]), tuple(tuple(c) for c in data["categories"]),
                                np.asarray(data["shares"], dtype=np.float64), int(data["size"]))
