"""Reconcile throughput and latency: `llmops run` against the framework's floor, in the same run.

Each contender gets a fresh API emulator, the same CRDs and one namespace; N Guardrails are
created as fast as a bounded pool of clients can, and a watch records when each one has both its
policy ConfigMap and Ready=True in status. Reported per contender: create→ready latency p50/p99,
sustained objects/s, and the RSS of the operator process and its children (a pod's memory counts them) once all N
are ready, at its peak, and optionally after an idle time; then our ratios to the floor.

The floor (`floor_operator.py`) is a kopf operator that POSTs one ConfigMap and sets Ready: the
least any kopf operator can do for the same result.

Run: python tests/benchmarks/reconcile.py [--count 1000] [--concurrency 16] [--rounds 3] [--baseline DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import aiohttp

from llmops_sandbox.apiserver import ApiServerThread
from llmops_sandbox.keeper import descendants
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
    """The operator and its children once all N are Ready."""
    own_mb: float = float("nan")
    """The operator process alone, at the same moment."""
    peak_mb: float = float("nan")
    """The largest sum sampled (every 0.5 s) from the first create to all Ready."""
    idle_mb: float = float("nan")
    """After `--idle` seconds without new objects (the guardrail worker stops after its idle time)."""

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


def rss_mb(pid: int, children: bool = True) -> float:
    """RSS of the process and all its descendants (a pod's memory counts its children: our guardrail worker)."""
    total = 0.0
    for process in [pid, *(descendants(pid) if children else [])]:
        try:
            for line in Path(f"/proc/{process}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024
        except (FileNotFoundError, ProcessLookupError):
            continue  # it ended meanwhile
    return total


async def peak_rss(pid: int, peak: list[float]) -> None:
    while True:
        peak[0] = max(peak[0], rss_mb(pid))
        await asyncio.sleep(0.5)


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
    """Every object event of `path`, forever. A watch that ends is resumed from the last version seen: the real
    apiserver closes its watches of a custom resource when it rebuilds that CRD's storage (a CRD status update
    does), and a tracker fed by a watch that stopped waits for ever."""
    version = "0"
    while True:
        params = {"watch": "true", "resourceVersion": version, "allowWatchBookmarks": "true"}
        async with http.get(path, params=params, timeout=aiohttp.ClientTimeout()) as resp:
            if resp.status == 429:  # a real apiserver answers 429 while a new CRD's watch cache starts
                await asyncio.sleep(1)
                continue
            if resp.status == 410:
                version = "0"
                continue
            if resp.status != 200:
                raise RuntimeError(f"watch {path}: HTTP {resp.status} {await resp.text()}")
            async for line in resp.content:
                if not line.strip():
                    continue
                event = json.loads(line)
                if event["type"] == "ERROR":  # the version is too old: start again from the current state
                    version = "0"
                    break
                version = event["object"]["metadata"]["resourceVersion"]
                if event["type"] != "BOOKMARK":
                    on_event(event["object"])
        print(f"watch {path} ended by the server; resumed from resourceVersion {version}", file=sys.stderr)


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


async def wait_one(http: aiohttp.ClientSession, tracker: Tracker, watches: list[asyncio.Task], name: str,
                   timeout: float) -> None:
    tracker.expected = {name}
    tracker.done.clear()
    await create_all(http, tracker, [name], 1)
    await until_done(tracker, watches, timeout)


async def until_done(tracker: Tracker, watches: list[asyncio.Task], timeout: float) -> None:
    """Wait for the tracker; a watch that failed fails the run at once instead of leaving it waiting."""
    done = asyncio.ensure_future(tracker.done.wait())
    finished, _ = await asyncio.wait([done, *watches], timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    if done not in finished:
        done.cancel()
        for task in finished:
            task.result()
        missing = sorted(n for n in tracker.expected if tracker.finished(n) is None)
        raise TimeoutError(f"{len(missing)} objects not ready after {timeout:.0f}s, e.g. {missing[:3]}")


async def measure(server: Server, pid: int, count: int, concurrency: int,
                  timeout: float, idle: float) -> tuple[list[float], float, tuple[float, float, float, float]]:
    tracker, peak = Tracker(), [0.0]
    connector = aiohttp.TCPConnector(ssl=server.tls)
    async with aiohttp.ClientSession(server.url, headers=server.headers, connector=connector) as http:
        watches = [asyncio.create_task(watch(http, GUARDRAILS, on_guardrail(tracker))),
                   asyncio.create_task(watch(http, CONFIGMAPS, on_configmap(tracker)))]
        await wait_one(http, tracker, watches, "warm-up", timeout=120)  # the operator is up and watching
        names = [f"g-{i:05d}" for i in range(count)]
        tracker.expected = set(names)
        tracker.done.clear()
        start = time.perf_counter()
        sampler = asyncio.create_task(peak_rss(pid, peak))
        await create_all(http, tracker, names, concurrency)
        await until_done(tracker, watches, timeout)
        seconds = max(tracker.finished(n) for n in names) - start
        rss, own = rss_mb(pid), rss_mb(pid, children=False)
        sampler.cancel()
        if idle:
            await asyncio.sleep(idle)
        for task in watches:
            task.cancel()
    return ([tracker.finished(n) - tracker.created[n] for n in names], seconds,
            (rss, own, max(peak[0], rss), rss_mb(pid) if idle else float("nan")))


def install(kubeconfig: Path) -> None:
    from llmops_operator.k8s.blocking import BlockingClient

    client = BlockingClient(kubeconfig)
    for definition in all_crds():
        client.apply(definition, namespace=None)
    time.sleep(2)  # let the CRDs be Established and discovery settle (the real apiserver takes a moment)
    client.create_namespace(NAMESPACE)


@dataclass
class Server:
    url: str
    kubeconfig: Path
    tls: ssl.SSLContext
    headers: dict[str, str]


@contextmanager
def api_server(kind: str, count: int, tmp: Path) -> Iterator[Server]:
    """A fresh API server: the emulator, or the real control plane that `make kube` builds (etcd, kube-apiserver,
    kube-controller-manager; tests/realkube), with an admin kubeconfig."""
    if kind == "emulator":
        with ApiServerThread(history=max(1000, count * 8)) as server:
            yield Server(server.url, server.write_kubeconfig(tmp / "kubeconfig"), server.ssl_context(),
                         server.headers)
        return
    sys.path.insert(0, str(HERE.parent))
    from llmops_sandbox.realkube import binaries, controlplane

    with controlplane.start(tmp / "plane", binaries.kube_binary()) as plane:
        yield Server(plane.url, plane.kubeconfig, plane.ssl_context(), {})


def run_contender(name: str, argv: list[str], count: int, concurrency: int, timeout: float,
                  pythonpath: str | None = None, apiserver: str = "emulator", idle: float = 0) -> Result:
    with tempfile.TemporaryDirectory() as tmp, api_server(apiserver, count, Path(tmp)) as server:
        install(server.kubeconfig)
        env = {**os.environ, "KUBECONFIG": str(server.kubeconfig)}
        if pythonpath:
            env["PYTHONPATH"] = pythonpath
        log = open(Path(tempfile.gettempdir()) / f"reconcile-bench-{name}-{os.getpid()}.log", "w")
        process = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            latencies, seconds, memory = asyncio.run(
                measure(server, process.pid, count, concurrency, timeout, idle))
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
    return Result(name, count, latencies, seconds, *memory)


def row(r: Result, label: str) -> str:
    return (f"{label:<14} {r.count:>7} {r.p50 * 1000:>8.0f} {r.p99 * 1000:>8.0f} {r.rate:>7.1f} {r.rss_mb:>7.0f} "
            f"{r.own_mb:>7.0f} {r.peak_mb:>7.0f} {r.idle_mb:>7.0f}")


def ratios(ours: Result, floor: Result) -> tuple[float, float, float, float]:
    """Ours to the floor: p50, p99, throughput and RSS."""
    return ours.p50 / floor.p50, ours.p99 / floor.p99, ours.rate / floor.rate, ours.rss_mb / floor.rss_mb


def report(rounds: list[dict[str, Result]]) -> str:
    """Every round's rows, then each contender's medians over the rounds and its median ratios to the floor
    (each ratio taken within a round, where both ran under the same load)."""
    lines = [f"{'contender':<14} {'objects':>7} {'p50 ms':>8} {'p99 ms':>8} {'obj/s':>7} {'RSS MB':>7} "
             f"{'own':>7} {'peak':>7} {'idle':>7}"]
    for number, results in enumerate(rounds, 1):
        lines += [row(r, f"{name} #{number}") for name, r in results.items()]
    median = statistics.median
    for name in rounds[0]:
        runs = [results[name] for results in rounds]
        merged = Result(name, runs[0].count, [median([r.p50 for r in runs])], 1.0, median([r.rss_mb for r in runs]),
                        *(median([getattr(r, f) for r in runs]) for f in ("own_mb", "peak_mb", "idle_mb")))
        p99, rate = median([r.p99 for r in runs]), median([r.rate for r in runs])
        lines.append(f"{name + ' median':<14} {merged.count:>7} {merged.p50 * 1000:>8.0f} {p99 * 1000:>8.0f} "
                     f"{rate:>7.1f} {merged.rss_mb:>7.0f} {merged.own_mb:>7.0f} {merged.peak_mb:>7.0f} "
                     f"{merged.idle_mb:>7.0f}")
    for name in list(rounds[0])[1:]:
        each = [ratios(results[name], results["floor"]) for results in rounds]
        p50, p99, rate, rss = (median(values) for values in zip(*each))
        lines.append(f"ratio {name}/floor (median of rounds): p50 {p50:.2f}x  p99 {p99:.2f}x  "
                     f"throughput {rate:.2f}x  RSS {rss:.2f}x")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--rounds", type=int, default=1,
                        help="rounds of every contender, in alternating order, reported with their medians")
    parser.add_argument("--apiserver", choices=["emulator", "real"], default="emulator",
                        help="the embedded emulator, or the real kube-apiserver `make kube` builds")
    parser.add_argument("--idle", type=float, default=0, metavar="SECONDS",
                        help="after all are Ready, wait this long and report RSS again (the guardrail worker "
                             "process stops after LLMOPS_GUARDRAIL_WORKER_IDLE_SECONDS, 60 by default)")
    parser.add_argument("--baseline", metavar="PYTHONPATH",
                        help="also run `llmops run` from this source tree (another checkout's operator/)")
    args = parser.parse_args()
    ours = [sys.executable, "-m", "llmops_operator", "run", "-n", NAMESPACE, "--liveness-port", "0",
            "--metrics-port", "0"]
    contenders: list[tuple[str, list[str], str | None]] = [
        ("floor", [sys.executable, str(HERE / "floor_operator.py"), NAMESPACE], None), ("llmops", ours, None)]
    if args.baseline:
        contenders.append(("baseline", ours, args.baseline))
    rounds = []
    for number in range(args.rounds):
        order = contenders if number % 2 == 0 else contenders[::-1]
        results = {name: run_contender(name, argv, args.count, args.concurrency, args.timeout, path,
                                            args.apiserver, args.idle)
                   for name, argv, path in order}
        rounds.append({name: results[name] for name, _, _ in contenders})
        print(report(rounds[-1:]), flush=True)
    print(report(rounds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
