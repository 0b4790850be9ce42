"""Reading the guardrail runtime's metrics back (pure parts)."""

from __future__ import annotations

import pytest

from llmops_operator.backends.prometheus import _exposition_line, _uptime, _with_types
from llmops_operator.backends.prometheus import parse_exposition
from llmops_operator.scoring.serving_metrics import kept_drift, quantile, reference_shares


def test_quantile_interpolates_inside_the_bucket_like_histogram_quantile():
    buckets = [(0.1, 50.0), (0.5, 90.0), (1.0, 100.0), (float("inf"), 100.0)]
    assert quantile(buckets, 0.5) == pytest.approx(0.1)
    assert quantile(buckets, 0.7) == pytest.approx(0.1 + 0.4 * 20 / 40)
    assert quantile([(1.0, 0.0), (float("inf"), 0.0)], 0.5) is None


def test_reference_lengths_fall_in_the_same_buckets_as_the_histogram():
    bounds = [16.0, 64.0, float("inf")]
    assert reference_shares([10, 16, 17, 64, 1000], bounds).tolist() == [0.4, 0.4, 0.2]


LAST = {"metric": "psi", "score": 0.5, "threshold": 0.2, "drifted": True, "feature": "promptLength",
        "window": "1h", "evaluatedAt": "2026-05-01T11:00:00Z"}


@pytest.mark.parametrize(("method", "threshold", "drifted"), [
    ("psi", 0.2, True), ("psi", 0.5, False), ("psi", 0.49, True), ("embedding", 0.9, False),
])
def test_a_kept_drift_score_is_rejudged_against_the_current_threshold(method, threshold, drifted):
    # Embedding drift is scored as PSI on length histograms, so a PSI score stays valid for it.
    assert kept_drift(LAST, method, threshold, "1h") == {**LAST, "threshold": threshold, "drifted": drifted}


@pytest.mark.parametrize("previous", [
    None, {"metric": "psi", "threshold": 0.2, "drifted": False}, {**LAST, "metric": "js"}, {**LAST, "evaluatedAt": None},
])
def test_without_a_usable_score_only_the_settings_remain_and_stale_keys_are_cleared(previous):
    block = kept_drift(previous, "psi", 0.3, "2h")
    assert {k: v for k, v in block.items() if v is not None} == {
        "metric": "psi", "threshold": 0.3, "drifted": False, "window": "2h"}
    assert set(block) == {"metric", "threshold", "drifted", "window"} | set(previous or {})


def test_prometheus_results_become_an_exposition_the_parser_reads():
    results = {"llmops_guardrail_requests_total": [{"metric": {"version": "v2", "outcome": "blocked"}, "value": [0, "3"]},
                                                   {"metric": {"version": "v2", "outcome": "allowed"}, "value": [0, "7"]}],
               "llmops_request_latency_seconds_bucket": [{"metric": {"le": "0.1"}, "value": [0, "4"]},
                                                         {"metric": {"le": "+Inf"}, "value": [0, "10"]}]}
    lines = [_exposition_line(name, item) for name, items in results.items() for item in items]
    sample = parse_exposition(_with_types(lines))
    assert sample.requests == {("v2", "blocked"): 3.0, ("v2", "allowed"): 7.0}
    assert sample.histograms["llmops_request_latency_seconds"] == [(0.1, 4.0), (float("inf"), 10.0)]


def test_uptime_comes_from_the_process_start_time():
    assert _uptime("# HELP x\nprocess_start_time_seconds 1000.0\n", now=1600.0) == 600.0
    assert _uptime("nothing here\n", now=1.0) is None


def test_a_kept_drift_score_from_too_few_samples_stays_undrifted():
    previous = {**LAST, "samples": 5}
    assert kept_drift(previous, "psi", 0.01, "1h", min_samples=30)["drifted"] is False
    assert kept_drift(previous, "psi", 0.01, "1h", min_samples=5)["drifted"] is True
