"""What the guardrail runtime's metrics say about a service: safety, latency, tokens and drift (pure).

Input is a ServingSample: the runtime's Prometheus series (servers/request_metrics.py names them), read
either straight from the transformer (sandbox) or rebuilt from Prometheus' HTTP API (cluster), and parsed
by backends/prometheus.py. Counters are totals over whatever window the source covers.

- safety: the share of instances that went through without a block or a redaction; by rule, the hits.
- latency: p50/p99 interpolated inside the request-latency histogram's buckets.
(numpy is imported only where drift is computed: the operator process stays lean without it.)

- drift: the prompt-length histogram against the reference prompts' lengths in the same buckets
  (PSI or JS, scoring/drift.py); the output-length histogram is reported alongside when a reference
  for it exists.

A window with no length samples (a restarted transformer: its counters start again at zero; a quiet
Prometheus window) measures nothing, so it does not replace the last evaluation: `kept_drift` carries
the last score, feature, window and evaluatedAt over unchanged, and recomputes only `drifted` against
the current threshold. The block therefore always reads drifted == (score > threshold) for the score it
shows, and evaluatedAt is when that score was computed (so the drift -> retrain loop does not take a
kept score for a new evaluation). A kept score is dropped when the metric changed, since it measured
something else; the block then names the dropped keys with None, because status is written as a JSON
merge patch, which would otherwise leave them in place beside the new settings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, Sequence

if TYPE_CHECKING:
    import numpy as np

UNSAFE_OUTCOMES = ("blocked", "redacted")
NOT_A_VERDICT = ("error",)
LENGTH_SIGNALS = {"promptLength": "llmops_prompt_length_chars", "outputLength": "llmops_output_length_chars"}


@dataclass
class ServingSample:
    requests: dict[tuple[str, str], float] = field(default_factory=dict)
    """(version, outcome) -> instances."""
    hits: dict[str, float] = field(default_factory=dict)
    """rule -> hits."""
    tokens: dict[tuple[str, str], float] = field(default_factory=dict)
    """(direction, version) -> tokens."""
    histograms: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    """histogram name -> cumulative (upper bound, count) pairs, +Inf last."""
    model_requests: dict[tuple[str, str], float] = field(default_factory=dict)
    """(model, outcome) -> OpenAI requests, the model being the base or a LoRA adapter."""
    model_tokens: dict[tuple[str, str], float] = field(default_factory=dict)
    """(model, direction) -> tokens."""
    retrieval: dict[str, float] = field(default_factory=dict)
    """Retrieval counters (scoring/retrieval_metrics.py retrieval_key) -> totals."""

    @property
    def total(self) -> float:
        return sum(self.requests.values())


def safety_block(sample: ServingSample, version: str | None = None) -> dict[str, Any] | None:
    """status.safety from live verdicts (all versions, or one); None before any request."""
    # Errors (bad requests, a failing predictor) say nothing about safety: they are left out.
    counts = {k: v for k, v in sample.requests.items()
              if (version is None or k[0] == version) and k[1] not in NOT_A_VERDICT}
    total = sum(counts.values())
    if total == 0:
        return None
    unsafe = sum(v for (_, outcome), v in counts.items() if outcome in UNSAFE_OUTCOMES)
    block: dict[str, Any] = {"score": round(1 - unsafe / total, 4), "evaluated": int(total)}
    if version is None:
        block["byRule"] = {rule: int(n) for rule, n in sorted(sample.hits.items()) if n}
    return block


def model_usage(sample: ServingSample, model: str) -> dict[str, Any] | None:
    """Requests, tokens, token share and live safety of one served model; None before it had a request."""
    requests = {outcome: n for (name, outcome), n in sample.model_requests.items() if name == model}
    if not sum(requests.values()):
        return None
    tokens = sum(n for (name, _), n in sample.model_tokens.items() if name == model)
    everything = sum(sample.model_tokens.values())
    usage: dict[str, Any] = {"requests": int(sum(requests.values())), "tokens": int(tokens),
                             "tokenShare": round(tokens / everything, 4) if everything else 0.0}
    judged = {o: n for o, n in requests.items() if o not in NOT_A_VERDICT}
    if sum(judged.values()):
        unsafe = sum(n for o, n in judged.items() if o in UNSAFE_OUTCOMES)
        usage["safety"] = {"score": round(1 - unsafe / sum(judged.values()), 4), "evaluated": int(sum(judged.values()))}
    return usage


def quantile(buckets: Sequence[tuple[float, float]], q: float) -> float | None:
    """The q-quantile of a cumulative histogram, linear inside the bucket (Prometheus' histogram_quantile)."""
    if not buckets or buckets[-1][1] == 0:
        return None
    rank = q * buckets[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound
            width = count - lower_count
            return bound if width == 0 else lower_bound + (bound - lower_bound) * (rank - lower_count) / width
        lower_bound, lower_count = bound, count
    return lower_bound


TIME_TO_FIRST_TOKEN = "gen_ai_server_time_to_first_token_seconds"
TIME_PER_OUTPUT_TOKEN = "gen_ai_server_time_per_output_token_seconds"


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def latency_block(sample: ServingSample) -> dict[str, Any] | None:
    """status.latency: request latency, and the OpenAI endpoints' GenAI time to first token and time per output
    token (servers/genai_telemetry.py), each where it has observations."""
    block: dict[str, Any] = {}
    buckets = sample.histograms.get("llmops_request_latency_seconds") or []
    if (p50 := quantile(buckets, 0.5)) is not None:
        block |= {"p50Ms": _ms(p50), "p99Ms": _ms(quantile(buckets, 0.99)), "requests": int(buckets[-1][1])}
    first = sample.histograms.get(TIME_TO_FIRST_TOKEN) or []
    if (ttft := quantile(first, 0.5)) is not None:
        block |= {"timeToFirstTokenP50Ms": _ms(ttft), "timeToFirstTokenP99Ms": _ms(quantile(first, 0.99))}
    per_token = quantile(sample.histograms.get(TIME_PER_OUTPUT_TOKEN) or [], 0.5)
    if per_token is not None:
        block["timePerOutputTokenP50Ms"] = _ms(per_token)
    return block or None


def tokens_served(sample: ServingSample, version: str | None = None) -> int:
    return int(sum(v for (_, ver), v in sample.tokens.items() if version is None or ver == version))


def bucket_shares(buckets: Sequence[tuple[float, float]]) -> "np.ndarray":
    """Per-bucket shares from cumulative counts."""
    import numpy as np

    cumulative = np.array([count for _, count in buckets], dtype=np.float64)
    counts = np.diff(cumulative, prepend=0.0)
    total = counts.sum()
    return counts / total if total else counts


def reference_shares(lengths: Iterable[int], bounds: Sequence[float]) -> "np.ndarray":
    """Shares of reference lengths in the histogram's buckets (upper bounds, +Inf last)."""
    import numpy as np

    values = np.asarray(list(lengths), dtype=np.float64)
    edges = np.asarray([b for b in bounds if not math.isinf(b)])
    counts = np.bincount(np.searchsorted(edges, values, side="left"), minlength=len(bounds)).astype(np.float64)
    return counts / counts.sum() if counts.sum() else counts


def drift_block(sample: ServingSample, references: dict[str, Sequence[int]], method: str, threshold: float,
                window: str | None, evaluated_at: str, min_samples: int = 1) -> dict[str, Any] | None:
    """status.drift over the length signals that have both a reference and live traffic. `samples` is the live
    prompts counted; with fewer than `min_samples` the score is shown but `drifted` stays false."""
    from llmops_operator.scoring import drift

    scores: dict[str, float] = {}
    samples = 0
    for signal, metric in LENGTH_SIGNALS.items():
        buckets = sample.histograms.get(metric)
        if not buckets or buckets[-1][1] < 1 or not references.get(signal):
            continue
        bounds = [bound for bound, _ in buckets]
        ref = reference_shares(references[signal], bounds)
        scores[signal] = float(drift.score(ref[None, :], bucket_shares(buckets)[None, :], _binned(method))[0])
        samples = max(samples, int(buckets[-1][1]))
    if not scores:
        return None
    block = drift.drift_status(scores, _binned(method), threshold, window, evaluated_at)
    return {**block, "samples": samples, "drifted": block["drifted"] and samples >= min_samples}


def kept_drift(previous: dict[str, Any] | None, method: str, threshold: float, window: str | None,
               min_samples: int = 1) -> dict[str, Any]:
    """status.drift while the live window has no samples: the last evaluation, re-judged against `threshold` and
    `min_samples`.

    `previous` is the last status.drift (camelCase). Without a usable last score (none yet, or one computed
    with another metric) the block carries only the settings, and None for each key it drops from `previous`.
    """
    from llmops_operator.scoring import drift

    previous = previous or {}
    score, feature, evaluated_at = previous.get("score"), previous.get("feature"), previous.get("evaluatedAt")
    if score is not None and feature and evaluated_at and previous.get("metric") == _binned(method):
        block = drift.drift_status({feature: float(score)}, _binned(method), threshold, previous.get("window"),
                                   evaluated_at)
        samples = previous.get("samples")
        if samples is None:
            return block
        return {**block, "samples": samples, "drifted": block["drifted"] and samples >= min_samples}
    block: dict[str, Any] = {"metric": method, "threshold": threshold, "drifted": False}
    if window:
        block["window"] = window
    return {**{key: None for key in previous if key not in block}, **block}


def _binned(method: str) -> str:
    """Length histograms are binned data: psi, js and ks apply; embedding drift needs embeddings, so psi stands in."""
    from llmops_operator.scoring import drift

    return method if method in drift.METHODS else "psi"
