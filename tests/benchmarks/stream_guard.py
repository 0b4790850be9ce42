"""What the stream guard costs per token with the example Guardrail's policy.

    PYTHONPATH=operator python tests/benchmarks/stream_guard.py

Feeds answers of 128, 512 and 2048 one-word tokens through a StreamGuard and prints the time per token
(checks included, in this process: the transformer runs them in its scan workers), the figure docs/serving.md
quotes.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import yaml

from llmops_operator.api.v1alpha1 import Guardrail as GuardrailResource
from llmops_operator.builders.guardrail_policy import compile_policy
from llmops_operator.core.contract import parse
from llmops_operator.guardrails.engine import Guardrail
from llmops_operator.guardrails.verdict import Verdict
from llmops_operator.servers.stream_guard import StreamGuard, guard_window

ROOT = Path(__file__).resolve().parents[2]
TEXT = "the quick brown fox jumps over the lazy dog and writes to support about the invoice " * 200


def example_guardrail() -> Guardrail:
    [body] = [d for d in yaml.safe_load_all((ROOT / "manifests/examples/guardrail.yaml").read_text())
              if d and d.get("kind") == "Guardrail"]
    body["metadata"]["namespace"] = "default"
    return Guardrail.from_document(json.loads(json.dumps(compile_policy(parse(GuardrailResource, body).spec))))


def main() -> None:
    guardrail = example_guardrail()
    words = TEXT.split()
    print(f"window: {guard_window(guardrail)} characters")
    for tokens in (128, 512, 2048):
        async def check(text: str, final: bool) -> Verdict:
            return guardrail.check(text, "output")

        async def run() -> None:
            for word in words[:tokens]:
                await guard.feed(word + " ")
            await guard.finish()

        guard = StreamGuard(check, guard_window(guardrail))
        started = time.perf_counter()
        asyncio.run(run())
        took = time.perf_counter() - started
        print(f"{tokens} tokens ({len(guard.text)} chars): {took * 1000 / tokens:.3f} ms per token")


if __name__ == "__main__":
    main()
