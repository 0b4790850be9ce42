"""`llmops guardrail test`: run a policy over JSON Lines of texts and print one verdict per line.

Each input line is `{"text": ..., "direction": "input"|"output", "label": "attack"|"benign"}` (direction
defaults to input, label is optional). With labels, a last line sums up the detection rate (attacks not
allowed) and the false-positive rate (benign texts not allowed). A malformed line stops the run with its
number, exit status 1.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, TextIO

import yaml

from llmops_operator.guardrails.engine import Guardrail
from llmops_operator.guardrails.policy import DIRECTIONS, POLICY_FORMAT, PolicyError, load_policy
from llmops_operator.guardrails.verdict import ALLOWED

LABELS = ("attack", "benign")


class CaseError(ValueError):
    """A malformed input line; the message starts with `line N:`."""


def load_guardrail(path: Path) -> Guardrail:
    """The engine for a Guardrail manifest (YAML, the Guardrail among its documents) or a compiled policy.json."""
    from llmops_operator.api.v1alpha1 import Guardrail as GuardrailResource
    from llmops_operator.builders.guardrail_policy import compile_policy
    from llmops_operator.core.contract import parse

    documents = [d for d in yaml.safe_load_all(path.read_text()) if isinstance(d, dict)]
    for document in documents:
        if document.get("format") == POLICY_FORMAT:
            return Guardrail(load_policy(document))
        if document.get("kind") == "Guardrail":
            return Guardrail(load_policy(compile_policy(parse(GuardrailResource, document).spec)))
    raise PolicyError(f"{path}: expected a Guardrail manifest or a compiled {POLICY_FORMAT} policy")


def parse_case(line: str, number: int) -> tuple[str, str, str | None]:
    try:
        case = json.loads(line)
    except json.JSONDecodeError as err:
        raise CaseError(f"line {number}: not JSON: {err.msg}") from None
    if not isinstance(case, dict):
        raise CaseError(f"line {number}: expected a JSON object")
    text, direction, label = case.get("text"), case.get("direction", "input"), case.get("label")
    if not isinstance(text, str):
        raise CaseError(f"line {number}: text: expected a string")
    if direction not in DIRECTIONS:
        raise CaseError(f"line {number}: direction: expected one of {', '.join(DIRECTIONS)}, got {direction!r}")
    if label is not None and label not in LABELS:
        raise CaseError(f"line {number}: label: expected one of {', '.join(LABELS)}, got {label!r}")
    return text, direction, label


def run_cases(guardrail: Guardrail, lines: Iterable[str], out: TextIO) -> dict[str, Any] | None:
    """Print a verdict per case; return the summary when some case had a label."""
    counts = {"attack": [0, 0], "benign": [0, 0]}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        text, direction, label = parse_case(line, number)
        verdict = guardrail.check(text, direction)
        out.write(json.dumps({"line": number, **verdict.to_dict()}) + "\n")
        if label:
            counts[label][0] += 1
            counts[label][1] += verdict.outcome != ALLOWED
    (attacks, caught), (benign, hit) = counts["attack"], counts["benign"]
    if not attacks and not benign:
        return None
    return {"summary": True, "attacks": attacks, "detected": caught, "benign": benign, "falsePositives": hit,
            "detectionRate": round(caught / attacks, 4) if attacks else None,
            "falsePositiveRate": round(hit / benign, 4) if benign else None}


def guardrail_test(policy_path: Path, input_path: Path, out: TextIO, err: TextIO) -> int:
    try:
        guardrail = load_guardrail(policy_path)
    except (OSError, ValueError, yaml.YAMLError) as error:
        err.write(f"error: {error}\n")
        return 1
    try:
        with input_path.open() as lines:
            summary = run_cases(guardrail, lines, out)
    except (OSError, CaseError) as error:
        err.write(f"error: {input_path}: {error}\n")
        return 1
    if summary:
        out.write(json.dumps(summary) + "\n")
    return 0
