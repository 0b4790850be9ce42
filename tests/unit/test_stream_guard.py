"""Streamed output is checked as it grows: the guard holds back a policy-derived window so that a secret split
across chunks is still redacted, and a block stops the stream before the blocked text leaves."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
import yaml

from llmops_operator.api.v1alpha1 import Guardrail as GuardrailResource
from llmops_operator.builders.guardrail_policy import compile_policy
from llmops_operator.core.contract import parse
from llmops_operator.guardrails.engine import Guardrail
from llmops_operator.guardrails.verdict import Verdict
from llmops_operator.servers.stream_guard import MAX_WINDOW, RELEASE_STEP, StreamGuard, guard_window, pattern_width

ROOT = Path(__file__).resolve().parents[2]
EMAIL = "john.doe@example.com"
AWS_KEY = "AKIAABCDEFGHIJKLMNOP"


def example_guardrail() -> Guardrail:
    [body] = [d for d in yaml.safe_load_all((ROOT / "manifests/examples/guardrail.yaml").read_text())
              if d and d.get("kind") == "Guardrail"]
    body["metadata"]["namespace"] = "default"
    return Guardrail.from_document(json.loads(json.dumps(compile_policy(parse(GuardrailResource, body).spec))))


def policy(*checks: dict) -> Guardrail:
    return Guardrail.from_document({"format": "llmops.dev/guardrail-policy/v1", "mode": "enforce",
                                    "checks": list(checks)})


def checker(guardrail: Guardrail):
    async def check(text: str, final: bool) -> Verdict:
        return guardrail.check(text, "output")
    return check


def stream(guard: StreamGuard, pieces: list[str]) -> list[str]:
    async def run() -> list[str]:
        sent = [await guard.feed(piece) for piece in pieces]
        return [*sent, await guard.finish()]
    return asyncio.run(run())


@pytest.mark.parametrize(("pattern", "width"), [(r"AKIA[0-9A-Z]{16}", 20), (r"ab(?=c)", 2), (r"\d+", MAX_WINDOW),
                                                 (r"x{1,1000}", MAX_WINDOW)])
def test_the_width_of_a_pattern_is_its_longest_match_and_unbounded_ones_are_capped(pattern, width):
    assert pattern_width(pattern) == width


def test_the_window_comes_from_the_output_checks_of_the_policy():
    aws = policy({"name": "aws", "type": "regexDeny", "action": "redact", "scope": "output",
                  "patterns": ["AKIA[0-9A-Z]{16}"]})
    input_only = policy({"name": "aws", "type": "regexDeny", "action": "redact", "scope": "input",
                         "patterns": ["AKIA[0-9A-Z]{16}"]})
    assert 20 < guard_window(aws) <= 20 + 16
    assert guard_window(input_only) == 0 and guard_window(None) == 0
    assert 0 < guard_window(example_guardrail()) <= MAX_WINDOW


@pytest.mark.parametrize("secret", [EMAIL, AWS_KEY])
@pytest.mark.parametrize("cut", [1, 3, 7])
def test_a_secret_split_across_chunks_is_redacted_before_any_of_it_leaves(secret, cut):
    guardrail = example_guardrail()
    guard = StreamGuard(checker(guardrail), guard_window(guardrail))
    text = f"Sure. Write to {secret} and we will answer soon, usually within the hour. " * 3
    pieces = [text[i:i + cut] for i in range(0, len(text), cut)]
    sent = stream(guard, pieces)
    joined = "".join(sent)
    assert secret not in joined and joined.count("[REDACTED:") == 3
    assert joined.startswith("Sure. Write to [REDACTED:")
    # No fragment of the secret longer than its first characters ever left in one piece or across pieces.
    assert secret[: len(secret) // 2] not in joined
    assert guard.verdict.outcome == "redacted"


def test_text_is_released_as_it_comes_once_past_the_window_and_the_window_stays_held():
    aws = policy({"name": "aws", "type": "regexDeny", "action": "redact", "scope": "output",
                  "patterns": ["AKIA[0-9A-Z]{16}"]})
    guard = StreamGuard(checker(aws), 30)
    seen, released = 0, 0
    for piece in ["a" * 10] * 30:
        seen += len(piece)
        released += len(asyncio.run(guard.feed(piece)))
        assert seen - released >= min(seen, 30), "less than the window held back"
        assert seen - released < 30 + RELEASE_STEP + 10, "text held longer than the window and one step"
    assert released >= 300 - 30 - RELEASE_STEP - 10
    assert released + len(asyncio.run(guard.finish())) == 300


def test_a_block_mid_stream_stops_the_release_before_the_blocked_text():
    blocking = policy({"name": "launch-codes", "type": "regexDeny", "action": "block", "scope": "output",
                       "patterns": ["launch code [0-9]{6}"]})
    guard = StreamGuard(checker(blocking), guard_window(blocking))
    harmless = "The weather is fine today and tomorrow looks good as well. " * 2
    sent = stream(guard, [harmless, "the launch code ", "123456 is", " secret"])
    assert guard.blocked and "launch" not in "".join(sent) and "123456" not in "".join(sent)
    assert stream(guard, ["more"]) == ["", ""]


def test_without_a_policy_text_passes_straight_through():
    guard = StreamGuard(None, 0)
    assert stream(guard, ["a", "b"]) == ["a", "b", ""]


def test_a_redaction_whose_hits_came_back_truncated_stops_the_stream():
    guardrail = example_guardrail()

    async def truncated(text: str, final: bool) -> Verdict:
        return guardrail.check(text, "output").summarized(1)

    guard = StreamGuard(truncated, 30)
    sent = stream(guard, [f"write to {EMAIL} or {EMAIL} " * 3, "and more text after it " * 3])
    assert guard.blocked and "".join(sent) == "" and EMAIL not in "".join(sent)
