"""`llmops guardrail test`: run a policy over labelled texts and report how well it does.

With `--input`, each line is `{"text": ..., "direction": "input"|"output"|"retrieved", "label":
"attack"|"benign", "family": ..., "language": ..., "split": ...}` (direction defaults to input; label, family,
language and split are optional) and one verdict is printed per line. With `--corpus`, the corpus shipped
with the guardrails is run instead (`--split`, default heldout) and only the rates are printed. Labelled runs
end with one line per family, one per language and a summary: the detection rate (attacks not allowed) and
the false-positive rate (benign texts not allowed). `--min-detection` and `--max-false-positives` turn the
run into a gate: exit status 1 when the overall result or any family is below them (only the overall result
with `--overall-only`), each failure on stderr.
A malformed line stops the run with its number, exit status 1.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, TextIO

import yaml

from llmops_operator.guardrails.corpus import DIRECTIONS, LABELS, SPLITS, CorpusError, load_corpus
from llmops_operator.guardrails.corpus_score import Scores, gate, score
from llmops_operator.guardrails.engine import Guardrail
from llmops_operator.guardrails.policy import POLICY_FORMAT, PolicyError, load_policy
from llmops_operator.guardrails.verdict import ALLOWED


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


@dataclass(frozen=True)
class Line:
    """One case of a user's file: only text is required."""

    text: str
    direction: str
    label: str | None
    family: str
    language: str
    split: str | None

    @property
    def scan_direction(self) -> str:
        return "input" if self.direction == "retrieved" else self.direction


def _optional_string(case: dict, field: str, default: str | None, number: int) -> str | None:
    value = case.get(field, default)
    if value is not None and not (isinstance(value, str) and 0 < len(value) <= 200):
        raise CaseError(f"line {number}: {field}: expected a string of 1 to 200 characters")
    return value


def parse_case(line: str, number: int) -> Line:
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
    split = _optional_string(case, "split", None, number)
    if split is not None and split not in SPLITS:
        raise CaseError(f"line {number}: split: expected one of {', '.join(SPLITS)}, got {split!r}")
    return Line(text, direction, label, _optional_string(case, "family", "default", number),
                _optional_string(case, "language", "und", number), split)


def run_lines(guardrail: Guardrail, lines: Iterable[str], out: TextIO, split: str | None = None) -> Scores | None:
    """Print a verdict per case (of the split, for lines that name one); return the scores when some case had
    a label."""
    scored: list[tuple[Line, bool]] = []
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        case = parse_case(raw, number)
        if split is not None and case.split not in (None, split):
            continue
        verdict = guardrail.check(case.text, case.scan_direction)
        out.write(json.dumps({"line": number, **verdict.to_dict()}) + "\n")
        if case.label:
            scored.append((case, verdict.outcome != ALLOWED))
    return score(scored) if scored else None


def run_corpus(guardrail: Guardrail, split: str | None) -> Scores:
    """The shipped corpus's scores, one split or all of it."""
    return score((case, guardrail.check(case.text, case.scan_direction).outcome != ALLOWED)
                 for case in load_corpus(split=split))


def guardrail_test(policy_path: Path, input_path: Path | None, out: TextIO, err: TextIO, *,
                   split: str | None = None, min_detection: float | None = None,
                   max_false_positives: float | None = None, per_family: bool = True) -> int:
    """Run `input_path`'s lines (or the shipped corpus when it is None) through the policy; 1 on an error or
    when a threshold is not met."""
    try:
        guardrail = load_guardrail(policy_path)
    except (OSError, ValueError, yaml.YAMLError) as error:
        err.write(f"error: {error}\n")
        return 1
    try:
        if input_path is None:
            scores: Scores | None = run_corpus(guardrail, split)
        else:
            with input_path.open(encoding="utf-8") as lines:
                scores = run_lines(guardrail, lines, out, split)
    except (OSError, CaseError, CorpusError) as error:
        err.write(f"error: {input_path or 'corpus'}: {error}\n")
        return 1
    if scores is None:
        if min_detection is not None or max_false_positives is not None:
            err.write("error: thresholds need labelled cases, and none had a label\n")
            return 1
        return 0
    for line in scores.lines():
        out.write(json.dumps(line) + "\n")
    failures = gate(scores, min_detection, max_false_positives, per_family)
    for failure in failures:
        err.write(f"below threshold: {failure}\n")
    return 1 if failures else 0
