"""Scores of a prompt candidate's evaluation outputs, and output-length drift between two versions (pure).

An example scores the mean of the checks it carries: `expected` (rougeL or exactMatch, the same maths as
the FineTune evaluation), `contains` (case-insensitive substring, 1 or 0) and `regex` (a match anywhere,
1 or 0). An example with none of them scores 1 when the service answered it. A blocked output scores 0.
Safety is the share of outputs neither blocked nor redacted by the guardrail.

Everything a tenant controls is bounded here: a dataset holds at most MAX_DATASET_BYTES and
MAX_DATASET_EXAMPLES examples, and ROUGE-L (quadratic in its inputs) compares at most ROUGE_CHARS characters of
each side. The `regex` check can still backtrack, which is why the operator runs this module's scoring in a
separate process under a time limit (entrypoints/prompt_scoring.py), never on its event loop.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Sequence

from pydantic import ValidationError

from llmops_operator.api.v1alpha1.promptrelease_evaluation import EvaluationExample, EvaluationResult, PromptDrift
from llmops_operator.scoring import rag_evaluation as rag
from llmops_operator.scoring.evaluation import exact_match, rouge_l

UNSAFE = ("blocked", "redacted")
MIN_DRIFT_SAMPLES = 5
DRIFT_BINS = 4
MAX_DATASET_BYTES = 1024 * 1024
MAX_DATASET_EXAMPLES = 200
ROUGE_CHARS = 4096


class DatasetError(ValueError):
    """An evaluation dataset that cannot be used; the message names the field and, for a bad line, the line."""

    reason = "DatasetInvalid"


class DatasetTooLarge(DatasetError):
    """A dataset over MAX_DATASET_BYTES or MAX_DATASET_EXAMPLES; refused before any line is parsed."""

    reason = "DatasetTooLarge"


@dataclass(frozen=True)
class Output:
    """What the service returned for one example."""

    text: str
    outcome: str = "allowed"
    """The strictest guardrail outcome on the way (allowed, flagged, redacted, blocked)."""
    sources: tuple[str, ...] | None = None
    """With retrieval: the ids and sources of the chunks the answer's context held."""
    context: str | None = None
    """With retrieval: the context the model was given."""

    def wire(self) -> dict:
        return {"text": self.text, "outcome": self.outcome, "sources": list(self.sources or ()) or None,
                "context": self.context}

    @classmethod
    def from_wire(cls, record: dict) -> "Output":
        sources = record.get("sources")
        return cls(text=str(record["text"]), outcome=str(record["outcome"]),
                   sources=tuple(map(str, sources)) if sources is not None else None, context=record.get("context"))


def example_score(example: EvaluationExample, output: Output, metric: str) -> float:
    if output.outcome == "blocked":
        return 0.0
    checks = []
    if example.expected is not None:
        checks.append(rouge_l(output.text[:ROUGE_CHARS], example.expected[:ROUGE_CHARS]) if metric == "rougeL"
                      else exact_match(output.text, example.expected))
    if example.contains is not None:
        checks.append(1.0 if example.contains.lower() in output.text.lower() else 0.0)
    if example.regex is not None:
        checks.append(1.0 if re.search(example.regex, output.text) else 0.0)
    return sum(checks) / len(checks) if checks else 1.0


def summarise(version: str, digest: str, examples: Sequence[EvaluationExample], outputs: Sequence[Output],
              metric: str, evaluated_at: str) -> EvaluationResult:
    scores = [example_score(e, o, metric) for e, o in zip(examples, outputs, strict=True)]
    unsafe = sum(1 for o in outputs if o.outcome in UNSAFE)
    pairs = list(zip(examples, outputs))
    recall = rag.mean(rag.context_recall(e.expected_sources, o.sources or ()) for e, o in pairs
                      if e.expected_sources and o.sources is not None and o.outcome != "blocked")
    faithful = rag.mean(rag.faithfulness(o.text, o.context) for _, o in pairs
                        if o.context is not None and o.outcome != "blocked")
    return EvaluationResult(version=version, hash=digest, score=round(sum(scores) / len(scores), 4),
                            safety=round(1 - unsafe / len(outputs), 4), examples=len(outputs),
                            evaluated_at=evaluated_at, context_recall=recall, faithfulness=faithful)


def length_drift(candidate: str, stable: str, candidate_outputs: Sequence[Output],
                 stable_outputs: Sequence[Output]) -> PromptDrift:
    """PSI of the candidate's output lengths in bins fitted on the stable version's outputs."""
    compared = f"{candidate} vs {stable}"
    if min(len(candidate_outputs), len(stable_outputs)) < MIN_DRIFT_SAMPLES:
        return PromptDrift(compared=compared, message=f"not enough traffic: {MIN_DRIFT_SAMPLES} outputs of each "
                                                      f"version are needed to compare output lengths")
    from llmops_operator.scoring import drift  # numpy only where drift is computed

    reference = drift.fit_numeric([len(o.text) for o in stable_outputs], ["outputLength"], bins=DRIFT_BINS)
    score = drift.numeric_drift(reference, [len(o.text) for o in candidate_outputs], "psi")["outputLength"]
    return PromptDrift(metric="psi", score=round(score, 4), compared=compared,
                       message=f"output length of {len(candidate_outputs)} evaluation answers per version")


def check_dataset_size(text: str, where: str) -> list[str]:
    """The dataset's lines, or DatasetTooLarge naming `where` and the bound it breaks (cheap: nothing is parsed)."""
    # A character is at least one byte: a text longer than the bound in characters is not encoded at all.
    size = len(text) if len(text) > MAX_DATASET_BYTES else len(text.encode("utf-8"))
    if size > MAX_DATASET_BYTES:
        raise DatasetTooLarge(f"{where}: holds {size} bytes or more, above the {MAX_DATASET_BYTES} bytes an "
                              "evaluation reads")
    lines = text.splitlines()
    examples = sum(1 for line in lines if line.strip())
    if examples > MAX_DATASET_EXAMPLES:
        raise DatasetTooLarge(f"{where}: holds {examples} examples, more than the {MAX_DATASET_EXAMPLES} an "
                              "evaluation runs")
    return lines


def parse_dataset(text: str, where: str) -> list[EvaluationExample]:
    """Examples from JSON Lines, within the size bounds; a bad line is refused naming it."""
    examples = []
    for number, line in enumerate(check_dataset_size(text, where), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as err:
            raise DatasetError(f"{where} line {number}: not JSON: {err}") from None
        try:
            examples.append(EvaluationExample.model_validate(record, by_alias=True, by_name=False))
        except ValidationError as err:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'line'}: {e['msg']}" for e in err.errors())
            raise DatasetError(f"{where} line {number}: {problems}") from None
    if not examples:
        raise DatasetError(f"{where}: no examples")
    return examples
