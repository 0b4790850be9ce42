"""Guardrail engine latency and scaling: the RE2 engine against the previous engine (Python `re`) in the same run.

Run on demand: `python tests/benchmarks/guardrail_latency.py [--requests N] [--baseline REF] [--cell-timeout S]
[--only latency|scaling|stages|fastpath] [--rules-only]`.
The previous engine is taken from git (`--baseline`, default the last commit whose engine ran on Python's `re`),
extracted to a temporary directory and run in a subprocess per measurement, killed past `--cell-timeout`.

1. Latency: the example Guardrail (every check type) with nine PII entities, on 1 KB and 16 KB texts (benign prose
   with a few PII items and one attack in four, rotated): p50/p99 per request and requests/s on one core.
2. Scaling, 1 KB to 1 MB (just under the engine's 1 M character limit), one check per cell: benign prose,
   dotted text (`a.a.a.`, which made the old e-mail pattern quadratic), dense e-mails (a match every 16 bytes),
   and the same prose under a policy with a tenant pattern that backtracks catastrophically, `(\\w+\\s?)+!!`.
3. Stages (`--only stages`, this tree only): the example policy with the rules alone (`learned=False`) against
   the rules plus the learned stage (ONNX Runtime, one thread), p50/p99 per request at 1 KB and 16 KB, and the
   learned stage's own cost (features and model) at 1 KB.
4. Fast path (`--only fastpath`, this tree only, rules only): the engine as it runs (`fast=True`: one trigger
   pass decides which deobfuscated views can differ from the text) against the full path that builds every view
   (`fast=False`, same verdicts), alternating in rounds so both see the same load: p50/p99 wall time and CPU
   time per request, and the ratio. With `--baseline REF` the latency table compares this tree with another
   commit's engine instead of the Python `re` one.

Every row reports CPU time per request next to wall time: the mean over the row (`time.process_time`), and in the
latency and stages tables its p50/p99 per request (the thread's `time.thread_time`). On a shared machine wall p99
is mostly waiting for a core; CPU p99 is what a request costs the core it runs on.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ENGINE_ROOT = Path(os.environ.get("LLMOPS_BENCH_ENGINE_ROOT", ROOT))
sys.path.insert(0, str(ENGINE_ROOT / "operator"))

BASELINE_REF = "987b798"
"""The last commit whose guardrail engine ran on Python's backtracking `re`."""
PROSE = ("The quarterly report shows that revenue grew in most regions, while costs stayed flat. Our team "
         "reviewed the pipeline, fixed two flaky tests and shipped version 2.4.1 to production on Tuesday. ")
EXTRAS = ["Contact jane.doe@example.com for details. ", "Call +44 20 7946 0958 after 5pm. ",
          "Order number 1234567890123456 is delayed. "]
ENTITIES = ["email", "phone", "creditCard", "ssn", "ipAddress", "iban", "person", "address", "nationalId"]
TENANT_PATTERN = r"(\w+\s?)+!!"
SIZES = (1_000, 4_000, 16_000, 64_000, 256_000, 999_000)
KINDS = {"benign prose": "prose", "dotted a.a.a.": "dotted", "dense e-mails": "emails",
         "prose, tenant (\\w+\\s?)+!!": "tenant"}


def policy_document(tenant: bool = False) -> dict:
    import yaml

    [body] = [d for d in yaml.safe_load_all((ROOT / "manifests/examples/guardrail.yaml").read_text())
              if d["kind"] == "Guardrail"]
    body["spec"]["checks"][0]["entities"] = ENTITIES
    body["spec"].pop("evaluation", None)
    if tenant:
        body["spec"]["checks"].append({"name": "tenant", "type": "regexDeny", "patterns": [TENANT_PATTERN]})
    from llmops_operator.api.v1alpha1 import Guardrail as GuardrailResource
    from llmops_operator.builders.guardrail_policy import compile_policy

    return compile_policy(GuardrailResource.model_validate(body).spec)


def attacks() -> list[str]:
    from llmops_operator.guardrails.selftest import ATTACKS

    return [case.text for case in ATTACKS]


def latency_texts(size: int, count: int = 32) -> list[str]:
    out, attack_texts = [], attacks()
    for i in range(count):
        filler = (PROSE + EXTRAS[i % len(EXTRAS)]) * (size // len(PROSE) + 1)
        attack = attack_texts[i % len(attack_texts)]
        out.append((filler[: size - len(attack) - 1] + " " + attack) if i % 4 == 0 else filler[:size])
    return out


def scaling_text(kind: str, size: int) -> str:
    unit = {"prose": PROSE, "dotted": "a.", "emails": "bob@example.com ", "tenant": PROSE}[kind]
    return (unit * (size // len(unit) + 1))[:size]


def percentile(ordered: list[float], fraction: float) -> float:
    return ordered[max(0, int(len(ordered) * fraction) - 1)]


def measure(check, samples: list[str], requests: int) -> dict[str, float]:
    """Wall and CPU time per request. CPU time is the calling thread's (`time.thread_time`): what the request cost
    one core, without the time it waited for one."""
    for text in samples[:8]:
        check(text)
    latencies, cpu_times = [], []
    start, cpu = time.perf_counter(), time.process_time()
    for i in range(requests):
        t0, c0 = time.perf_counter(), time.thread_time()
        check(samples[i % len(samples)])
        cpu_times.append(time.thread_time() - c0)
        latencies.append(time.perf_counter() - t0)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    latencies.sort()
    cpu_times.sort()
    return {"p50_us": statistics.median(latencies) * 1e6, "p99_us": percentile(latencies, 0.99) * 1e6,
            "rps": requests / wall, "cpu_us": cpu / requests * 1e6,
            "cpu_p50_us": statistics.median(cpu_times) * 1e6, "cpu_p99_us": percentile(cpu_times, 0.99) * 1e6}


def run_task(task: dict) -> dict:
    """One measurement with whichever engine is on the path (this process's or the baseline's)."""
    from llmops_operator.guardrails.engine import Guardrail

    if task["what"] == "latency":
        options = {key: task[key] for key in ("learned", "fast") if key in task}
        guard = Guardrail.from_document(policy_document(), **options)
        return measure(lambda t: guard.check(t, "input"), latency_texts(task["size"]), task["requests"])
    guard = Guardrail.from_document(policy_document(tenant=task["kind"] == "tenant"))
    text = scaling_text(task["kind"], task["size"])
    best = float("inf")
    for _ in range(task["repeat"]):
        started = time.perf_counter()
        guard.check(text, "input")
        best = min(best, time.perf_counter() - started)
    return {"seconds": best}


def baseline_root(ref: str) -> Path:
    """The previous engine's source tree, from git, in a temporary directory."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", ref, "operator"],
                             check=True, capture_output=True).stdout
    target = Path(tempfile.mkdtemp(prefix="guardrail-baseline-"))
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(target, filter="data")
    return target


def run_baseline(root: Path, task: dict, timeout: float) -> dict | None:
    """The task run by the baseline engine in a subprocess; None when it ran past `timeout` seconds."""
    env = {**os.environ, "LLMOPS_BENCH_ENGINE_ROOT": str(root), "PYTHONPATH": str(root / "operator")}
    try:
        done = subprocess.run([sys.executable, __file__, "--task", json.dumps(task)], env=env, timeout=timeout,
                              capture_output=True, text=True, check=True)
    except subprocess.TimeoutExpired:
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def latency_table(root: Path, requests: int, timeout: float, baseline: str, rules_only: bool = False) -> None:
    print(f"\n{'size':>6} {'engine':<22} {'p50 us':>9} {'p99 us':>9} {'cpu us':>9} {'cpu p50':>9} {'cpu p99':>9} "
          f"{'req/s':>9}")
    for size in (1024, 16384):
        task = {"what": "latency", "size": size, "requests": requests, **({"learned": False} if rules_only else {})}
        rows = {"this tree": run_task(task), f"baseline {baseline}": run_baseline(root, task, timeout)}
        for name, row in rows.items():
            if row is None:
                print(f"{size:>6} {name:<22} {'> ' + str(timeout) + ' s':>9}")
                continue
            print(f"{size:>6} {name:<22} {row['p50_us']:>9.0f} {row['p99_us']:>9.0f} {row['cpu_us']:>9.0f} "
                  f"{row['cpu_p50_us']:>9.0f} {row['cpu_p99_us']:>9.0f} {row['rps']:>9.0f}")
        new, old = rows["this tree"], rows[f"baseline {baseline}"]
        if old is not None:
            print(f"{size:>6} ratio baseline/this tree: p50 x{old['p50_us'] / new['p50_us']:.2f}, "
                  f"p99 x{old['p99_us'] / new['p99_us']:.2f}")


def fastpath_table(requests: int, rounds: int = 5) -> None:
    """Rules only, fast path against full path, alternating in `rounds` rounds of `requests / rounds` each."""
    from llmops_operator.guardrails.engine import Guardrail

    paths = {name: Guardrail.from_document(policy_document(), learned=False, fast=fast)
             for name, fast in (("fast path", True), ("full path", False))}
    print(f"\n{'size':>6} {'path':<10} {'p50 us':>9} {'p99 us':>9} {'cpu us':>9}")
    for size in (1024, 16384):
        texts, latencies = latency_texts(size), {name: [] for name in paths}
        cpu = dict.fromkeys(paths, 0.0)
        for name, guard in paths.items():
            for text in texts:
                guard.check(text, "input")
        for _ in range(rounds):
            for name, guard in paths.items():
                started = time.process_time()
                for i in range(requests // rounds):
                    t0 = time.perf_counter()
                    guard.check(texts[i % len(texts)], "input")
                    latencies[name].append(time.perf_counter() - t0)
                cpu[name] += time.process_time() - started
        rows = {}
        for name, found in latencies.items():
            found.sort()
            rows[name] = (statistics.median(found) * 1e6, found[int(len(found) * 0.99) - 1] * 1e6,
                          cpu[name] / len(found) * 1e6)
            print(f"{size:>6} {name:<10} {rows[name][0]:>9.0f} {rows[name][1]:>9.0f} {rows[name][2]:>9.0f}")
        (fast_p50, _, fast_cpu), (full_p50, _, full_cpu) = rows["fast path"], rows["full path"]
        print(f"{size:>6} ratio full/fast: p50 x{full_p50 / fast_p50:.2f}, cpu x{full_cpu / fast_cpu:.2f}")


def stages_table(requests: int) -> None:
    from llmops_operator.guardrails.learned import learned_stage, model_input

    print(f"\n{'size':>6} {'path':<26} {'p50 us':>9} {'p99 us':>9} {'cpu p50':>9} {'cpu p99':>9} {'req/s':>9}")

    def show(size: int, name: str, row: dict[str, float]) -> None:
        print(f"{size:>6} {name:<26} {row['p50_us']:>9.0f} {row['p99_us']:>9.0f} {row['cpu_p50_us']:>9.0f} "
              f"{row['cpu_p99_us']:>9.0f} {row['rps']:>9.0f}")
    for size in (1024, 16384):
        for name, learned in (("regex only", False), ("two-stage (rules+ONNX)", True)):
            show(size, name, run_task({"what": "latency", "size": size, "requests": requests, "learned": learned}))
    stage, texts = learned_stage(), latency_texts(1024)
    show(1024, "learned stage alone",
         measure(lambda t: stage.scores(model_input(t, {"injection.override": 0.95})), texts, requests))


def scaling_table(root: Path, timeout: float) -> None:
    print(f"\n{'text':<28} {'size':>8} {'RE2 ms':>9} {'re ms':>11} {'re/RE2':>8}")
    for label, kind in KINDS.items():
        stalled = False
        for size in SIZES:
            task = {"what": "scaling", "kind": kind, "size": size, "repeat": 3 if size <= 64_000 else 1}
            new = run_task(task)["seconds"]
            old = None if stalled else run_baseline(root, task, timeout)
            stalled = stalled or old is None
            old_text = f"> {timeout * 1000:.0f}" if old is None else f"{old['seconds'] * 1000:.1f}"
            ratio = "" if old is None else f"x{old['seconds'] / new:.1f}"
            print(f"{label:<28} {size:>8} {new * 1000:>9.2f} {old_text:>11} {ratio:>8}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--baseline", default=BASELINE_REF, help="git ref of the previous engine")
    parser.add_argument("--cell-timeout", type=float, default=20.0, help="seconds before a baseline cell is cut")
    parser.add_argument("--only", choices=("latency", "scaling", "stages", "fastpath"))
    parser.add_argument("--rules-only", action="store_true", help="latency rows without the learned stage")
    parser.add_argument("--task", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.task:
        print(json.dumps(run_task(json.loads(args.task))))
        return 0
    if args.only in ("stages", "fastpath"):
        print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")
        (stages_table if args.only == "stages" else fastpath_table)(args.requests)
        print(f"load {os.getloadavg()[0]:.2f} at the end")
        return 0
    root = baseline_root(args.baseline)
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}, "
          f"baseline {args.baseline}, {args.requests} requests per latency row")
    if args.only != "scaling":
        latency_table(root, args.requests, args.cell_timeout * 10, args.baseline, args.rules_only)
    if args.only != "latency":
        scaling_table(root, args.cell_timeout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
