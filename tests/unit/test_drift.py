"""Tabular drift scores (scoring/drift.py) against a straightforward per-feature numpy/scipy computation."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon

from llmops_operator.scoring import drift

RNG = np.random.default_rng(7)


def per_feature_shares(reference: np.ndarray, current: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """One column at a time: quantile edges, np.digitize, missing values in an extra bin."""
    ref_rows, cur_rows = [], []
    for j in range(reference.shape[1]):
        ref, cur = reference[:, j], current[:, j]
        edges = np.nanquantile(ref, np.linspace(0, 1, bins + 1)[1:-1])
        for column, out in ((ref, ref_rows), (cur, cur_rows)):
            index = np.where(np.isnan(column), bins, np.digitize(column, edges))
            out.append(np.bincount(index, minlength=bins + 1) / len(column))
    return np.array(ref_rows), np.array(cur_rows)


def smoothed(shares: np.ndarray) -> np.ndarray:
    floored = np.maximum(shares, drift.EPSILON)
    return floored / floored.sum()


def baseline_psi(p: np.ndarray, q: np.ndarray) -> float:
    p, q = smoothed(p), smoothed(q)
    return float(np.sum((q - p) * np.log(q / p)))


def baseline_js(p: np.ndarray, q: np.ndarray) -> float:
    return float(jensenshannon(smoothed(p), smoothed(q), base=2))


def sample(rows: int, shift: float = 0.0) -> np.ndarray:
    """Five differently shaped features; `shift` moves three of them."""
    return np.column_stack([
        RNG.normal(shift, 1.0, rows),
        RNG.exponential(1.0 + shift, rows),
        RNG.integers(0, 5, rows).astype(float),  # few distinct values: repeated quantile edges
        RNG.uniform(0, 1, rows),
        RNG.lognormal(shift, 0.5, rows),
    ])


@pytest.mark.parametrize("method, baseline", [("psi", baseline_psi), ("js", baseline_js)])
def test_numeric_scores_match_per_feature_computation(method, baseline):
    reference, current = sample(5_000), sample(3_000, shift=0.5)
    current[RNG.random(current.shape) < 0.02] = np.nan
    fitted = drift.fit_numeric(reference, bins=10)
    scores = drift.numeric_drift(fitted, current, method)
    ref_shares, cur_shares = per_feature_shares(reference, current, 10)
    expected = [baseline(p, q) for p, q in zip(ref_shares, cur_shares)]
    np.testing.assert_allclose(list(scores.values()), expected, rtol=1e-12, atol=1e-12)


def test_binning_spans_several_chunks(monkeypatch):
    monkeypatch.setattr(drift, "CHUNK_ROWS", 1_000)
    reference, current = sample(4_500), sample(2_345, shift=1.0)
    fitted = drift.fit_numeric(reference)
    ref_shares, cur_shares = per_feature_shares(reference, current, drift.DEFAULT_BINS)
    np.testing.assert_allclose(fitted.shares, ref_shares, atol=1e-15)
    np.testing.assert_allclose(drift.numeric_shares(fitted, current), cur_shares, atol=1e-15)


def test_same_distribution_is_stable_and_a_shift_is_detected():
    fitted = drift.fit_numeric(sample(20_000), names=["a", "b", "c", "d", "e"])
    stable = drift.numeric_drift(fitted, sample(20_000))
    assert max(stable.values()) < 0.01
    moved = drift.numeric_drift(fitted, sample(20_000, shift=1.0))
    hits = drift.detect(moved, 0.2, "psi")
    assert {h.feature for h in hits} == {"a", "b", "e"}
    assert hits[0].score == max(moved.values())
    assert "psi" in str(hits[0]) and "> 0.2" in str(hits[0])


def test_reference_quantile_bins_hold_equal_shares():
    fitted = drift.fit_numeric(RNG.normal(size=(10_000, 1)), bins=4)
    np.testing.assert_allclose(fitted.shares[0], [0.25, 0.25, 0.25, 0.25, 0.0], atol=1e-3)


def test_missing_rate_jump_counts_as_drift():
    reference = RNG.normal(size=(5_000, 1))
    current = RNG.normal(size=(5_000, 1))
    current[:2_500] = np.nan
    assert drift.numeric_drift(drift.fit_numeric(reference), current)["f0"] > 1.0


def test_categorical_scores_match_per_feature_computation():
    colours = ["red", "green", "blue", "cyan"]
    reference = {"colour": RNG.choice(colours, 4_000, p=[0.4, 0.3, 0.2, 0.1]).tolist(),
                 "flag": RNG.choice([True, False], 4_000).tolist()}
    current = {"colour": RNG.choice(colours + ["magenta"], 4_000, p=[0.1, 0.2, 0.3, 0.2, 0.2]).tolist(),
               "flag": [None if i % 10 == 0 else bool(v) for i, v in enumerate(RNG.choice([True, False], 4_000))]}
    fitted = drift.fit_categorical(reference, max_categories=3)
    assert fitted.categories[0] == ("red", "green", "blue")
    scores = drift.categorical_drift(fitted, current, "psi")
    for name, cats in zip(fitted.names, fitted.categories):
        def shares(values):
            bins = [sum(1 for v in values if v is not None and str(v) == c) for c in cats]
            bins.append(sum(1 for v in values if v is not None and str(v) not in cats))
            bins.append(sum(1 for v in values if v is None))
            return np.array(bins) / len(values)
        assert scores[name] == pytest.approx(baseline_psi(shares(reference[name]), shares(current[name])), abs=1e-12)
    assert scores["colour"] > 0.2


def test_reference_survives_json():
    fitted = drift.fit_numeric(sample(1_000), names=list("abcde"))
    again = drift.numeric_from_json(json.loads(json.dumps(drift.numeric_to_json(fitted))))
    current = sample(1_000, shift=0.3)
    assert drift.numeric_drift(again, current) == drift.numeric_drift(fitted, current)
    cats = drift.fit_categorical({"x": ["a", "b", "a", None]})
    again_cats = drift.categorical_from_json(json.loads(json.dumps(drift.categorical_to_json(cats))))
    assert drift.categorical_drift(again_cats, {"x": ["b", "b"]}) == drift.categorical_drift(cats, {"x": ["b", "b"]})


def test_status_block_names_the_worst_feature():
    block = drift.drift_status({"a": 0.05, "b": 0.31}, "psi", 0.2, "1h", "2026-01-01T00:00:00Z")
    assert block == {"metric": "psi", "threshold": 0.2, "drifted": True, "feature": "b", "score": 0.31,
                     "window": "1h", "evaluatedAt": "2026-01-01T00:00:00Z"}
    assert drift.drift_status({"a": 0.05}, "js", 0.2, None, "t")["drifted"] is False


@pytest.mark.parametrize("call, message", [
    (lambda: drift.fit_numeric(np.empty((0, 3))), "reference"),
    (lambda: drift.fit_numeric(np.ones((5, 2)), names=["a"]), "1 names for 2 features"),
    (lambda: drift.fit_numeric(np.ones((5, 2)), bins=1), "bins"),
    (lambda: drift.numeric_drift(drift.fit_numeric(np.ones((5, 2))), np.ones((5, 3))), "3 features"),
    (lambda: drift.score(np.ones((1, 2)), np.ones((1, 2)), "wasserstein"), "method"),
    (lambda: drift.detect({"a": 1.0}, 0, "psi"), "threshold"),
    (lambda: drift.categorical_drift(drift.fit_categorical({"x": ["a"]}), {"y": ["a"]}), "x"),
])
def test_bad_input_names_the_problem(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_ks_is_the_largest_cdf_gap_on_the_shared_bins():
    import numpy as np
    from scipy import stats

    from llmops_operator.scoring import drift

    rng = np.random.default_rng(7)
    reference, current = rng.normal(0, 1, 20_000), rng.normal(0.3, 1, 20_000)
    fitted = drift.fit_numeric(reference[:, None], ["x"], bins=50)
    binned = drift.numeric_drift(fitted, current[:, None], method="ks")["x"]
    exact = stats.ks_2samp(reference, current).statistic
    assert binned <= exact + 1e-9 and binned == pytest.approx(exact, abs=0.02)
    assert drift.numeric_drift(fitted, reference[:, None], method="ks")["x"] == pytest.approx(0.0, abs=1e-9)
