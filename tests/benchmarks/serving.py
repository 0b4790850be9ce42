"""Time to first token, time per output token and throughput of a model served directly and behind the guardrail
transformer, in the same run, at several numbers of concurrent streams.

    # CPU: the sandbox predictor (transformers) with a tiny GPT-2 built from a config (nothing downloaded)
    PYTHONPATH=operator python tests/benchmarks/serving.py --requests 8 --concurrency 1,8,32
    # GPU: a running vLLM server (`vllm serve ...` answers /v1/...); the transformer is started here in front of it
    PYTHONPATH=operator python tests/benchmarks/serving.py --predictor-url http://gpu-host:8000 --prefix "" \\
        --model meta-llama/Llama-3.1-8B-Instruct --requests 64

Each request is an OpenAI chat completion with `stream: true` and `stream_options.include_usage`, sent by an
httpx client. Measured per request at the client: time to first token (TTFT, until the first chunk carrying
text), time per output token (TPOT, (last text chunk - first text chunk) / (completion tokens - 1), the GenAI
convention's definition), and per level the output tokens per second of wall time. Direct and guarded runs
alternate level by level, so both see the same machine. The transformer runs the example Guardrail's policy.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "integration"))

from model_servers import MODEL, Server, free_port, save_tiny_gpt2, wait_ready, write_policy  # noqa: E402

PROMPT = "Write a short note to a customer about resetting a password on the account page."


@dataclass
class Sample:
    ttft: float
    tpot: float | None
    tokens: int


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


async def one_stream(client: httpx.AsyncClient, url: str, model: str, max_tokens: int) -> Sample:
    body = {"model": model, "messages": [{"role": "user", "content": PROMPT}], "max_tokens": max_tokens,
            "temperature": 0, "stream": True, "stream_options": {"include_usage": True}}
    started = time.perf_counter()
    first = last = None
    tokens = 0
    async with client.stream("POST", url, json=body) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if "error" in chunk:
                raise RuntimeError(f"stream ended with an error: {chunk['error']}")
            if any((c.get("delta") or {}).get("content") for c in chunk.get("choices") or []):
                last = time.perf_counter()
                first = first or last
            if chunk.get("usage"):
                tokens = chunk["usage"].get("completion_tokens") or 0
    if first is None:
        raise RuntimeError("the stream carried no text")
    tpot = (last - first) / (tokens - 1) if tokens > 1 and last > first else None  # one chunk: no decode gap seen
    return Sample(ttft=first - started, tpot=tpot, tokens=tokens)


async def level(url: str, model: str, concurrency: int, requests: int, max_tokens: int) -> dict[str, float]:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=600, limits=limits) as client:
        await one_stream(client, url, model, max_tokens)  # warm the connection and the model
        gate = asyncio.Semaphore(concurrency)

        async def guarded_call() -> Sample:
            async with gate:
                return await one_stream(client, url, model, max_tokens)

        started = time.perf_counter()
        samples = await asyncio.gather(*(guarded_call() for _ in range(requests)))
        wall = time.perf_counter() - started
    ttft = [s.ttft * 1000 for s in samples]
    tpot = [s.tpot * 1000 for s in samples if s.tpot is not None]
    return {"ttft_p50": statistics.median(ttft), "ttft_p99": percentile(ttft, 0.99),
            "tpot_p50": statistics.median(tpot) if tpot else float("nan"),
            "tpot_p99": percentile(tpot, 0.99) if tpot else float("nan"),
            "tokens_per_s": sum(s.tokens for s in samples) / wall}


@contextmanager
def local_predictor(work: Path, threads: int) -> Iterator[str]:
    model_dir = save_tiny_gpt2(work / "model")
    port = free_port()
    server = Server([sys.executable, "-m", "llmops_operator.servers.predictor", "--model_name", MODEL,
                     "--model_dir", str(model_dir), "--http_port", str(port), "--host", "127.0.0.1"],
                    {"OMP_NUM_THREADS": str(threads)}, work / "predictor.log")
    try:
        wait_ready(f"http://127.0.0.1:{port}/v1/models/{MODEL}", server.process)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


POLICIES = ("no checks", "input checks", "full policy")


def policy_env(work: Path, variant: str) -> dict[str, str]:
    """The example Guardrail's compiled policy (full policy); with every check on prompts only (input checks: the
    stream guard holds nothing back); or no policy mounted (no checks: the transformer's own hop)."""
    if variant == "no checks":
        return {}
    path = write_policy(work / f"policy-{variant.replace(' ', '-')}.json")
    if variant == "input checks":
        policy = json.loads(path.read_text())
        policy["checks"] = [{**check, "scope": "input"} for check in policy["checks"]
                            if check.get("scope") != "retrieved"]
        path.write_text(json.dumps(policy))
    return {"LLMOPS_GUARDRAIL_POLICY": str(path)}


@contextmanager
def guardrail_transformer(work: Path, predictor: str, prefix: str, model: str, variant: str) -> Iterator[str]:
    port = free_port()
    host = predictor.split("://", 1)[1].rstrip("/")
    env = {**policy_env(work, variant), "LLMOPS_PREDICTOR_PATH_PREFIX": prefix}
    server = Server([sys.executable, "-m", "llmops_operator.servers.transformer", "--model_name", model,
                     "--predictor_host", host, "--http_port", str(port), "--enable_grpc", "false"],
                    env, work / f"transformer-{port}.log")
    try:
        wait_ready(f"http://127.0.0.1:{port}/v1/models/{model}", server.process)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def _ms(value: float, sign: str = "") -> str:
    """A TPOT figure; — where none was seen (an answer released in one chunk has no gap between tokens)."""
    return "—" if math.isnan(value) else f"{value:{sign}.2f}"


def table(results: list[tuple[int, str, dict[str, float]]]) -> str:
    lines = ["| streams | path | TTFT p50 ms | TTFT p99 ms | TPOT p50 ms | TPOT p99 ms | tokens/s |",
             "|---:|---|---:|---:|---:|---:|---:|"]
    by_level: dict[int, dict[str, dict[str, float]]] = {}
    for streams, path, figures in results:
        by_level.setdefault(streams, {})[path] = figures
        lines.append(f"| {streams} | {path} | {figures['ttft_p50']:.1f} | {figures['ttft_p99']:.1f} | "
                     f"{_ms(figures['tpot_p50'])} | {_ms(figures['tpot_p99'])} | {figures['tokens_per_s']:.0f} |")
    for streams, paths in by_level.items():
        d = paths["direct"]
        for path, g in paths.items():
            if path == "direct":
                continue
            lines.append(f"| {streams} | {path} − direct | {g['ttft_p50'] - d['ttft_p50']:+.1f} | "
                         f"{g['ttft_p99'] - d['ttft_p99']:+.1f} | {_ms(g['tpot_p50'] - d['tpot_p50'], '+')} | "
                         f"{_ms(g['tpot_p99'] - d['tpot_p99'], '+')} | "
                         f"{g['tokens_per_s'] / d['tokens_per_s'] - 1:+.0%} |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--predictor-url", help="a running OpenAI-compatible predictor (vLLM: http://host:8000); "
                                                "unset: the sandbox predictor with a tiny GPT-2 is started here")
    parser.add_argument("--prefix", default=None,
                        help="path of the predictor's OpenAI routes before /v1 ('' for vLLM; /openai, KServe's "
                             "Hugging Face runtime, by default)")
    parser.add_argument("--model", default=MODEL, help="the model name the predictor serves")
    parser.add_argument("--concurrency", default="1,8,32", help="comma-separated concurrent streams per level")
    parser.add_argument("--requests", type=int, default=8, help="requests per level and path")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--predictor-threads", type=int, default=1, help="torch threads of the local predictor")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    prefix = "/openai" if args.prefix is None else args.prefix.rstrip("/")
    levels = [int(x) for x in args.concurrency.split(",") if x.strip()]
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        work = Path(tmp)
        predictor = args.predictor_url or stack.enter_context(local_predictor(work, args.predictor_threads))
        urls = {"direct": f"{predictor.rstrip('/')}{prefix}/v1/chat/completions"}
        for variant in POLICIES:
            guarded = stack.enter_context(guardrail_transformer(work, predictor, prefix, args.model, variant))
            urls[f"guarded, {variant}"] = f"{guarded}/v1/chat/completions"
        results = []
        for streams in levels:
            for path, url in urls.items():
                figures = asyncio.run(level(url, args.model, streams, max(args.requests, streams), args.max_tokens))
                results.append((streams, path, figures))
                print(f"{streams:>3} {path:22} {json.dumps({k: round(v, 2) for k, v in figures.items()})}",
                      file=sys.stderr, flush=True)
    print(f"predictor: {args.predictor_url or 'sandbox predictor, tiny GPT-2 (2 layers), CPU'}; "
          f"max_tokens {args.max_tokens}; {os.cpu_count()} CPUs")
    print(table(results))


if __name__ == "__main__":
    main()
