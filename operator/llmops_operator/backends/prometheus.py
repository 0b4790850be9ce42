"""Where the operator reads a service's runtime metrics: a direct scrape, or Prometheus' HTTP API.

Direct scrape (the sandbox, or a cluster without Prometheus): GET <service URL>/metrics from the
guardrail transformer; counters are totals since the transformer started. Prometheus
(settings.prometheus_url): the same series summed over the drift window with increase(), so the
status describes recent traffic. Either way the result is a Prometheus text exposition that
parse_exposition turns into a ServingSample, and a failure is reported, never raised.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from llmops_operator.k8s.capped import BodyTooLarge, read_text_capped
from llmops_operator.scoring.retrieval_metrics import retrieval_key
from llmops_operator.scoring.serving_metrics import ServingSample

log = logging.getLogger("llmops.metrics")
TIMEOUT = aiohttp.ClientTimeout(total=5)
MAX_SCRAPE_BYTES = 8 * 1024 * 1024
"""A transformer's /metrics is the tenant's: read at most this much (ours is a few KiB per prompt version)."""
MAX_QUERY_BYTES = 8 * 1024 * 1024
SERIES = {
    "llmops_guardrail_requests_total": ("version", "outcome"),
    "llmops_guardrail_hits_total": ("rule", "direction", "effect"),
    "llmops_tokens_total": ("direction", "version"),
    "llmops_model_requests_total": ("model", "outcome"),
    "llmops_model_tokens_total": ("model", "direction"),
    "llmops_request_latency_seconds_bucket": ("le",),
    "llmops_prompt_length_chars_bucket": ("le",),
    "llmops_output_length_chars_bucket": ("le",),
    "gen_ai_server_time_to_first_token_seconds_bucket": ("le",),
    "gen_ai_server_time_per_output_token_seconds_bucket": ("le",),
    "llmops_retrieval_requests_total": ("outcome",),
    "llmops_retrieval_chunks_total": ("fate",),
    "llmops_retrieval_top_score_total": (),
    "llmops_retrieval_scored_total": (),
    "llmops_embedding_calls_total": (),
    "llmops_retrieval_latency_seconds_bucket": ("le",),
}
GAUGES = ("llmops_query_drift", "llmops_query_drift_samples")
"""Gauges read as they are now (the largest over the service's transformers), not as increases over the window."""


@dataclass
class Scrape:
    text: str | None
    seconds: float | None
    """How long the counters cover (transformer uptime, or the query window)."""
    error: str | None = None


async def scrape(url: str, now: float) -> Scrape:
    try:
        async with aiohttp.ClientSession(timeout=TIMEOUT) as http:
            async with http.get(url.rstrip("/") + "/metrics") as resp:
                if resp.status != 200:
                    return Scrape(None, None, f"GET {url}/metrics: HTTP {resp.status}")
                text = await read_text_capped(resp, MAX_SCRAPE_BYTES, f"GET {url}/metrics")
    except BodyTooLarge as err:
        return Scrape(None, None, str(err))
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as err:
        return Scrape(None, None, f"GET {url}/metrics: {type(err).__name__}: {err}")
    return Scrape(text, _uptime(text, now))


def _uptime(text: str, now: float) -> float | None:
    for line in text.splitlines():
        if line.startswith("process_start_time_seconds "):
            return max(now - float(line.split()[1]), 1.0)
    return None


def _label_selector(namespace: str, pods: str) -> str:
    # Prometheus adds namespace and pod when scraping.
    return f'namespace="{namespace}",pod=~"{pods}-.*"'


async def query_prometheus(base_url: str, namespace: str, service: str, window_seconds: int,
                           pods: str | None = None) -> Scrape:
    """Each series summed by its labels over the window, written back as exposition lines. The runtime's pods are
    `pods`-*; by default KServe's transformer pods of `service`, <isvc>-transformer-*."""
    pods = pods or f"{service}-transformer"
    lines = []
    try:
        async with aiohttp.ClientSession(base_url, timeout=TIMEOUT) as http:
            for name, labels in SERIES.items():
                query = (f"sum by ({','.join(labels)}) "
                         f"(increase({name}{{{_label_selector(namespace, pods)}}}[{window_seconds}s]))")
                async with http.get("/api/v1/query", params={"query": query}) as resp:
                    body: dict[str, Any] = json.loads(
                        await read_text_capped(resp, MAX_QUERY_BYTES, f"Prometheus query for {name}"))
                if body.get("status") != "success":
                    return Scrape(None, None, f"Prometheus query for {name} failed: {body.get('error')}")
                lines += [_exposition_line(name, item) for item in body["data"]["result"]]
            for name in GAUGES:
                async with http.get("/api/v1/query", params={
                        "query": f"max({name}{{{_label_selector(namespace, service)}}})"}) as resp:
                    body = json.loads(await read_text_capped(resp, MAX_QUERY_BYTES, f"Prometheus query for {name}"))
                lines += [_exposition_line(name, item) for item in (body.get("data") or {}).get("result") or []]
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError) as err:
        return Scrape(None, None, f"Prometheus at {base_url}: {type(err).__name__}: {err}")
    return Scrape(_with_types(lines), float(window_seconds))


def _exposition_line(name: str, item: dict[str, Any]) -> str:
    labels = ",".join(f'{k}="{v}"' for k, v in sorted(item["metric"].items()))
    return f"{name}{{{labels}}} {item['value'][1]}"


def _with_types(lines: list[str]) -> str:
    """The lines grouped under a # TYPE header per family (counter for _total series, histogram for _bucket)."""
    out = []
    for series in SERIES:
        family, _, suffix = series.rpartition("_")
        members = [line for line in lines if line.startswith(series + "{")]
        if members:
            out += [f"# TYPE {family} {'counter' if suffix == 'total' else 'histogram'}", *members]
    for gauge in GAUGES:
        members = [line for line in lines if line.startswith(gauge + "{")]
        if members:
            out += [f"# TYPE {gauge} gauge", *members]
    return "\n".join(out) + "\n"


async def parse_off_loop(text: str) -> ServingSample:
    """parse_exposition in a worker thread: a tenant's body of up to MAX_SCRAPE_BYTES takes seconds to parse, and
    the event loop (liveness, every other object's reconcile) must keep answering meanwhile."""
    return await asyncio.to_thread(parse_exposition, text)


def _relevant(text: str) -> str:
    """Only the series the status reads (and their # TYPE lines): anything else a body carries costs nothing."""
    families = tuple(name.rpartition("_")[0] for name in SERIES) + GAUGES
    keep = [line for line in text.splitlines()
            if line.startswith(tuple(SERIES) + GAUGES) or (line.startswith("# TYPE ") and line[7:].startswith(families))]
    return "\n".join(keep) + "\n"


def parse_exposition(text: str) -> ServingSample:
    sample = ServingSample()
    buckets: dict[str, dict[float, float]] = {}
    for family in text_string_to_metric_families(_relevant(text)):
        for s in family.samples:
            if s.name == "llmops_guardrail_requests_total":
                key = (s.labels.get("version", ""), s.labels.get("outcome", ""))
                sample.requests[key] = sample.requests.get(key, 0.0) + s.value
            elif s.name == "llmops_guardrail_hits_total":
                sample.hits[s.labels["rule"]] = sample.hits.get(s.labels["rule"], 0.0) + s.value
            elif s.name == "llmops_tokens_total":
                key = (s.labels.get("direction", ""), s.labels.get("version", ""))
                sample.tokens[key] = sample.tokens.get(key, 0.0) + s.value
            elif s.name in ("llmops_model_requests_total", "llmops_model_tokens_total"):
                table = sample.model_requests if s.name == "llmops_model_requests_total" else sample.model_tokens
                key = s.labels.get("model", ""), s.labels.get("outcome", s.labels.get("direction", ""))
                table[key] = table.get(key, 0.0) + s.value
            elif (key := retrieval_key(s.name, s.labels)) is not None:
                sample.retrieval[key] = sample.retrieval.get(key, 0.0) + s.value
            elif s.name.endswith("_bucket"):  # summed over the other labels (model, operation)
                counts = buckets.setdefault(s.name.removesuffix("_bucket"), {})
                counts[float(s.labels["le"])] = counts.get(float(s.labels["le"]), 0.0) + s.value
    sample.histograms = {name: sorted(counts.items()) for name, counts in buckets.items()}
    return sample
