"""spec.evaluation: a labeled dataset run against a compiled policy, pass rate overall and per family.

A record passes when the policy's verdict on its text is the outcome its label expects. The dataset is
tenant data, so it is bounded (size and records) and read line by line with errors naming the line; the
operator runs it in its worker, never on the event loop.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass

from llmops_operator.api.v1alpha1.guardrail import DIRECTIONS, FamilyResult, GuardrailEvaluationResult
from llmops_operator.guardrails.engine import Guardrail
from llmops_operator.guardrails.offline_runs import DatasetError
from llmops_operator.guardrails.verdict import ALLOWED, BLOCKED, FLAGGED, REDACTED

EXPECTED = {"allow": ALLOWED, "block": BLOCKED, "redact": REDACTED, "flag": FLAGGED}
MAX_RECORDS = 10_000
MAX_DATASET_BYTES = 1 << 20
MAX_FAMILIES = 32
DEFAULT_FAMILY = "default"


@dataclass(frozen=True)
class Record:
    text: str
    expected: str
    family: str
    direction: str


def parse_record(line: str, number: int) -> Record:
    try:
        raw = json.loads(line)
    except json.JSONDecodeError as err:
        raise DatasetError(f"line {number}: not JSON: {err.msg}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("text"), str):
        raise DatasetError(f"line {number}: expected an object with a string text")
    expected, family = raw.get("expected"), raw.get("family", DEFAULT_FAMILY)
    direction = raw.get("direction", "input")
    if expected not in EXPECTED:
        raise DatasetError(f"line {number}: expected: {expected!r} is not one of {', '.join(EXPECTED)}")
    if not isinstance(family, str) or not 0 < len(family) <= 63:
        raise DatasetError(f"line {number}: family: expected a string of 1 to 63 characters")
    if direction not in DIRECTIONS:
        raise DatasetError(f"line {number}: direction: {direction!r} is not one of {', '.join(DIRECTIONS)}")
    return Record(raw["text"], EXPECTED[expected], family, direction)


def parse_dataset(text: str) -> list[Record]:
    if len(text.encode("utf-8", "surrogatepass")) > MAX_DATASET_BYTES:
        raise DatasetError(f"the dataset is over {MAX_DATASET_BYTES} bytes")
    records = [parse_record(line, number) for number, line in enumerate(text.splitlines(), start=1) if line.strip()]
    if not records:
        raise DatasetError("the dataset has no records")
    if len(records) > MAX_RECORDS:
        raise DatasetError(f"the dataset has {len(records)} records, over the {MAX_RECORDS} limit")
    if len({r.family for r in records}) > MAX_FAMILIES:
        raise DatasetError(f"the dataset has more than {MAX_FAMILIES} families")
    return records


def evaluate(guardrail: Guardrail, records: list[Record], policy_hash: str = "",
             dataset_hash: str = "") -> GuardrailEvaluationResult:
    totals, passes = Counter(), Counter()
    for record in records:
        totals[record.family] += 1
        passes[record.family] += guardrail.check(record.text, record.direction).outcome == record.expected
    families = [FamilyResult(family=f, records=totals[f], passed=passes[f]) for f in sorted(totals)]
    return GuardrailEvaluationResult(policy_hash=policy_hash, dataset_hash=dataset_hash, records=len(records),
                                     passed=sum(passes.values()), families=families)


def evaluate_policy_json(policy_json: str, dataset: str, policy_hash: str,
                         dataset_hash: str) -> GuardrailEvaluationResult:
    """The evaluation of a compiled policy (its canonical JSON) on a dataset's text; what the worker runs."""
    return evaluate(Guardrail.from_document(json.loads(policy_json)), parse_dataset(dataset), policy_hash,
                    dataset_hash)
