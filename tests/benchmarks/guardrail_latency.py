"""Guardrail engine latency: combined scan vs the per-rule baseline (and llm-guard if importable).

Run on demand: `python tests/benchmarks/guardrail_latency.py [--requests N]`. Uses the example Guardrail
(every check type) with every PII entity enabled, on 1 KB and 16 KB texts (benign prose with a few PII items and
one attack per text, rotated). Prints p50/p99 per request, requests/s on one core and the baseline/combined ratio.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "operator"))

import yaml  # noqa: E402

from llmops_operator.api.v1alpha1 import Guardrail as GuardrailResource  # noqa: E402
from llmops_operator.builders.guardrail_policy import compile_policy  # noqa: E402
from llmops_operator.guardrails.engine import Guardrail  # noqa: E402
from llmops_operator.guardrails.scanners import PerRuleScanner  # noqa: E402
from llmops_operator.guardrails.selftest import ATTACKS  # noqa: E402

PROSE = ("The quarterly report shows that revenue grew in most regions, while costs stayed flat. Our team "
         "reviewed the pipeline, fixed two flaky tests and shipped version 2.4.1 to production on Tuesday. ")
EXTRAS = ["Contact jane.doe@example.com for details. ", "Call +44 20 7946 0958 after 5pm. ",
          "Order number 1234567890123456 is delayed. "]


def default_policy() -> dict:
    body = yaml.safe_load((ROOT / "manifests/examples/guardrail.yaml").read_text())
    body["spec"]["checks"][0]["entities"] = ["email", "phone", "creditCard", "ssn", "ipAddress", "iban", "person",
                                             "address", "nationalId"]
    return compile_policy(GuardrailResource.model_validate(body).spec)


def texts(size: int, count: int = 32) -> list[str]:
    out = []
    for i in range(count):
        filler = (PROSE + EXTRAS[i % len(EXTRAS)]) * (size // len(PROSE) + 1)
        attack = ATTACKS[i % len(ATTACKS)].text
        out.append((filler[: size - len(attack) - 1] + " " + attack) if i % 4 == 0 else filler[:size])
    return out


def measure(check, samples: list[str], requests: int) -> dict[str, float]:
    for text in samples[:8]:
        check(text)
    latencies = []
    start = time.perf_counter()
    for i in range(requests):
        t0 = time.perf_counter()
        check(samples[i % len(samples)])
        latencies.append(time.perf_counter() - t0)
    wall = time.perf_counter() - start
    latencies.sort()
    return {"p50_us": statistics.median(latencies) * 1e6, "p99_us": latencies[int(len(latencies) * 0.99) - 1] * 1e6,
            "rps": requests / wall}


def llm_guard_check():
    """llm-guard's regex-only scanners (Secrets and Regex) on the same texts, or None if it is not installed."""
    try:
        from llm_guard.input_scanners import Regex, Secrets
        from llm_guard.util import configure_logger
    except ImportError:
        return None
    configure_logger("ERROR")
    patterns = [r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b",
                r"\b\d(?:[ -]?\d){12,18}\b", r"\b\d{3}-\d{2}-\d{4}\b"]
    scanners = [Secrets(redact_mode="all"), Regex(patterns=patterns, is_blocked=True, redact=True)]

    def check(text: str) -> None:
        for scanner in scanners:
            scanner.scan(text)
    return check


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    document = default_policy()
    combined = Guardrail.from_document(document)
    naive = Guardrail.from_document(document, scanner_factory=PerRuleScanner)
    other = llm_guard_check()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}, "
          f"{args.requests} requests per row, {len(combined.plans['input'].signals)} input signals")
    print(f"{'size':>6} {'engine':<22} {'p50 us':>9} {'p99 us':>9} {'req/s':>9}")
    for size in (1024, 16384):
        samples = texts(size)
        rows = {"combined": measure(lambda t: combined.check(t, "input"), samples, args.requests),
                "per-rule baseline": measure(lambda t: naive.check(t, "input"), samples, args.requests)}
        if other is not None:
            rows["llm-guard Secrets+Regex"] = measure(other, samples, max(50, args.requests // 20))
        for name, row in rows.items():
            print(f"{size:>6} {name:<22} {row['p50_us']:>9.0f} {row['p99_us']:>9.0f} {row['rps']:>9.0f}")
        base, fast = rows["per-rule baseline"], rows["combined"]
        print(f"{size:>6} ratio baseline/combined: p50 x{base['p50_us'] / fast['p50_us']:.1f}, "
              f"p99 x{base['p99_us'] / fast['p99_us']:.1f}, req/s x{fast['rps'] / base['rps']:.1f}")
        if other is not None:
            print(f"{size:>6} ratio llm-guard/combined: p50 x{rows['llm-guard Secrets+Regex']['p50_us'] / fast['p50_us']:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
