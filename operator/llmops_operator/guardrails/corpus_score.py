"""Detection and false-positive rates of a policy on labelled cases, overall, per family and per language.

An attack counts as detected when its verdict is anything but allowed (blocked, redacted or flagged); a benign
case counts as a false positive on the same rule. `gate` compares every group that has cases of a label with
the thresholds and names the ones below them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Protocol

from llmops_operator.api.v1alpha1.guardrail import DetectionRates


class Labelled(Protocol):
    label: str
    family: str
    language: str


@dataclass
class Tally(DetectionRates):
    attacks: int = 0
    detected: int = 0
    benign: int = 0
    false_positives: int = 0

    def add(self, attack: bool, flagged: bool) -> None:
        if attack:
            self.attacks += 1
            self.detected += flagged
        else:
            self.benign += 1
            self.false_positives += flagged

    def to_dict(self) -> dict[str, Any]:
        return {"attacks": self.attacks, "detected": self.detected, "benign": self.benign,
                "falsePositives": self.false_positives, "detectionRate": self.detection_rate,
                "falsePositiveRate": self.false_positive_rate}


@dataclass
class Scores:
    overall: Tally = field(default_factory=Tally)
    families: dict[str, Tally] = field(default_factory=dict)
    languages: dict[str, Tally] = field(default_factory=dict)

    def add(self, case: Labelled, flagged: bool) -> None:
        attack = case.label == "attack"
        self.overall.add(attack, flagged)
        self.families.setdefault(case.family, Tally()).add(attack, flagged)
        self.languages.setdefault(case.language, Tally()).add(attack, flagged)

    def lines(self) -> list[dict[str, Any]]:
        """One record per family, one per language (sorted), then the summary."""
        return ([{"family": name, **tally.to_dict()} for name, tally in sorted(self.families.items())]
                + [{"language": name, **tally.to_dict()} for name, tally in sorted(self.languages.items())]
                + [{"summary": True, **self.overall.to_dict()}])


def score(results: Iterable[tuple[Labelled, bool]]) -> Scores:
    """Scores of (case, flagged) pairs, flagged meaning the verdict was not allowed."""
    scores = Scores()
    for case, flagged in results:
        scores.add(case, flagged)
    return scores


def gate(scores: Scores, min_detection: float | None, max_false_positives: float | None,
         per_family: bool = True) -> list[str]:
    """The overall result and (with `per_family`) each family below the thresholds, as sentences; empty when
    all pass."""
    failures = []
    groups = [("overall", scores.overall)]
    if per_family:
        groups += [(f"family {name}", tally) for name, tally in sorted(scores.families.items())]
    for name, tally in groups:
        if min_detection is not None and tally.attacks and tally.detection_rate < min_detection:
            failures.append(f"{name}: detection rate {tally.detection_rate} is below {min_detection} "
                            f"({tally.detected} of {tally.attacks} attacks)")
        if max_false_positives is not None and tally.benign and tally.false_positive_rate > max_false_positives:
            failures.append(f"{name}: false-positive rate {tally.false_positive_rate} is above "
                            f"{max_false_positives} ({tally.false_positives} of {tally.benign} benign cases)")
    return failures
