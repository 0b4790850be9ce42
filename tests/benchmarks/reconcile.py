"""Reconcile throughput and latency: `llmops run` against the framework's floor, in the same run.

Each contender gets a fresh API emulator, the same CRDs and one namespace; N Guardrails are
created as fast as a bounded pool of clients can, and a watch records when each one has both its
policy ConfigMap and Ready=True in status. Reported per contender: create→ready latency p50/p99,
sustained objects/s, and the operator process's RSS once all N are ready; then our ratios to the floor.

The floor (`floor_operator.py`) is a kopf operator that POSTs one ConfigMap and sets Ready: the
least any kopf operator can do for the same result.

Run: python tests/benchmarks/reconcile.py [--count 1000] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from llmops_sandbox.apiserver import ApiServerThread
from llmops_sandbox.main import all_crds

HERE = Path(__file__).resolve().parent
NAMESPACE = "bench"
GUARDRAILS = f"/apis/llmops.dev/v1alpha1/namespaces/{NAMESPACE}/guardrails"
CONFIGMAPS = f"/api/v1/namespaces/{NAMESPACE}/configmaps"
SPEC = {"mode": "enforce", "checks": [
    {"name": "pii", "type": "piiRedaction", "action": "redact"},
    {"name": "injection", "type": "promptInjection", "threshold": 0.8, "scope": "input"},
    {"name": "size", "type": "maxTokens", "maxTokens": 4096},
]}


@dataclass
class Result:
    name: str
    count: int
    latencies: list[float]
    seconds: float
    rss_mb: float

    @property
    def p50(self) -> float:
        return statistics.median(self.latencies)

    @property
    def p99(self) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]

    @property
    def rate(self) -> float:
        return self.count / self.seconds


def guardrail(name: str) -> dict:
    return {"apiVersion": "llmops.dev/v1alpha1", "kind": "Guardrail",
            "metadata": {"name": name, "namespace": NAMESPACE}, "spec": SPEC}


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def is_ready(obj: dict) -> bool:
    conditions = obj.get("status", {}).get("conditions", [])
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


class Tracker:
    """When each Guardrail became Ready and when a ConfigMap it owns appeared."""

    def __init__(self) -> None:
        self.created: dict[str, float] = {}
        self.ready: dict[str, float] = {}
        self.child: dict[str, float] = {}
        self.done = asyncio.Event()
        self.expected: set[str] = set()

    def finished(self, name: str) -> float | None:
        if name in self.ready and name in self.child:
            return max(self.ready[name], self.child[name])
        return None

    def note(self, table: dict[str, float], name: str) -> None:
        table.setdefault(name, time.perf_counter())
        if self.expected and all(self.finished(n) is not None for n in self.expected):
            self.done.set()


async def watch(http: aiohttp.ClientSession, path: str, on_event) -> None:
    async with http.get(path, params={"watch": "true", "resourceVersion": "0"}, timeout=aiohttp.ClientTimeout()) as resp:
        async for line in resp.content:
            if line.strip():
                on_event(json.loads(line)["object"])


def on_guardrail(tracker: Tracker):
    def handle(obj: dict) -> None:
        if is_ready(obj):
            tracker.note(tracker.ready, obj["metadata"]["name"])
    return handle


def on_configmap(tracker: Tracker):
    def handle(obj: dict) -> None:
        for owner in obj["metadata"].get("ownerReferences", []):
            if owner["kind"] == "Guardrail":
                tracker.note(tracker.child, owner["name"])
    return handle


async def create_all(http: aiohttp.ClientSession, tracker: Tracker, names: list[str], concurrency: int) -> None:
    pool = asyncio.Semaphore(concurrency)

    async def create(name: str) -> None:
        async with pool:
            tracker.created[name] = time.perf_counter()
            async with http.post(GUARDRAILS, json=guardrail(name)) as resp:
                if resp.status != 201:
                    raise RuntimeError(f"create {name}: HTTP {resp.status} {await resp.text()}")

    await asyncio.gather(*(create(n) for n in names))


async def wait_one(http: aiohttp.ClientSession, tracker: Tracker, name: str, timeout: float) -> None:
    tracker.expected = {name}
    tracker.done.clear()
    await create_all(http, tracker, [name], 1)
    await asyncio.wait_for(tracker.done.wait(), timeout)


async def measure(server: ApiServerThread, pid: int, count: int, concurrency: int,
                  timeout: float) -> tuple[list[float], float, float]:
    tracker = Tracker()
    connector = aiohttp.TCPConnector(ssl=server.ssl_context())
    async with aiohttp.ClientSession(server.url, headers=server.headers, connector=connector) as http:
        watches = [asyncio.create_task(watch(http, GUARDRAILS, on_guardrail(tracker))),
                   asyncio.create_task(watch(http, CONFIGMAPS, on_configmap(tracker)))]
        await wait_one(http, tracker, "warm-up", timeout=120)  # the operator is up and watching
        names = [f"g-{i:05d}" for i in range(count)]
        tracker.expected = set(names)
        tracker.done.clear()
        start = time.perf_counter()
        await create_all(http, tracker, names, concurrency)
        await asyncio.wait_for(tracker.done.wait(), timeout)
        seconds = max(tracker.finished(n) for n in names) - start
        rss = rss_mb(pid)
        for task in watches:
            task.cancel()
    return [tracker.finished(n) - tracker.created[n] for n in names], seconds, rss


def install(server: ApiServerThread, kubeconfig: Path) -> None:
    from llmops_operator.k8s.blocking import BlockingClient

    client = BlockingClient(kubeconfig)
    for definition in all_crds():
        client.apply(definition, namespace=None)
    time.sleep(0.5)  # CRDs are Established synchronously by the emulator; let discovery settle
    client.create_namespace(NAMESPACE)


def run_contender(name: str, argv: list[str], count: int, concurrency: int, timeout: float) -> Result:
    with ApiServerThread(history=max(1000, count * 8)) as server, tempfile.TemporaryDirectory() as tmp:
        kubeconfig = server.write_kubeconfig(Path(tmp) / "kubeconfig")
        install(server, kubeconfig)
        env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
        log = open(Path(tempfile.gettempdir()) / f"reconcile-bench-{name}.log", "w")
        process = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            latencies, seconds, rss = asyncio.run(measure(server, process.pid, count, concurrency, timeout))
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
    return Result(name, count, latencies, seconds, rss)


def report(results: list[Result]) -> str:
    lines = [f"{'contender':<10} {'objects':>7} {'p50 ms':>8} {'p99 ms':>8} {'obj/s':>7} {'RSS MB':>7}"]
    for r in results:
        lines.append(f"{r.name:<10} {r.count:>7} {r.p50 * 1000:>8.1f} {r.p99 * 1000:>8.1f} {r.rate:>7.1f} {r.rss_mb:>7.0f}")
    floor, ours = results
    lines.append(f"ratio llmops/floor: p50 {ours.p50 / floor.p50:.2f}x  p99 {ours.p99 / floor.p99:.2f}x  "
                 f"throughput {ours.rate / floor.rate:.2f}x  RSS {ours.rss_mb / floor.rss_mb:.2f}x")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--timeout", type=float, default=900)
    args = parser.parse_args()
    contenders = [
        ("floor", [sys.executable, str(HERE / "floor_operator.py"), NAMESPACE]),
        ("llmops", [sys.executable, "-m", "llmops_operator", "run", "-n", NAMESPACE, "--liveness-port", "0",
                    "--metrics-port", "0"]),
    ]
    results = [run_contender(name, argv, args.count, args.concurrency, args.timeout) for name, argv in contenders]
    print(report(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
