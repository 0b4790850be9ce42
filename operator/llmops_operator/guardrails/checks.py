"""What each check type does, in one place: the signals it reads, how it judges their matches, and the
self-test cases its own settings call for. `KINDS` is the one dispatch on a check's type.

Span checks (piiRedaction, regexDeny) hit per match; classifier checks (promptInjection, jailbreak, toxicity)
score the noisy-or of their signal weights against the threshold; topicDenylist hits once per topic; maxTokens
compares a token estimate with the limit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

from llmops_operator.api.v1alpha1.guardrail import CheckType, GuardrailCheck
from llmops_operator.guardrails.injection import INJECTION_SIGNALS, JAILBREAK_SIGNALS
from llmops_operator.guardrails.learned import LEARNED_FLOOR
from llmops_operator.guardrails.multilingual import (MULTILINGUAL_INJECTION, MULTILINGUAL_JAILBREAK,
                                                     MULTILINGUAL_TOXICITY)
from llmops_operator.guardrails.personas import PERSONA_JAILBREAK
from llmops_operator.guardrails.pii import pii_signals
from llmops_operator.guardrails.signals import INJECTION, JAILBREAK, PII, REGEX, TOPIC, TOXICITY, Signal
from llmops_operator.guardrails.topics import topic_signals
from llmops_operator.guardrails.toxicity import TOXICITY_SIGNALS
from llmops_operator.guardrails.verdict import Hit

SIZE = "maxTokens"
LEARNED_LABEL = "learned"
"""How a verdict names the learned stage among a check's signals."""


@dataclass(slots=True)
class Match:
    """One validated match of a signal; made per candidate on the hot path, so a plain slotted class (a frozen
    dataclass costs three times as much to build)."""

    signal: int
    start: int
    end: int
    decoded: bool = False
    """Found inside a decoded payload; the span is the payload's span."""
    entity: str | None = None
    """The entity a resolving signal recognised (else the signal's own)."""
    label: str | None = None


@dataclass
class Evidence:
    """What one scan found, as a check judges it: the direction's signals, the matches of the signals the check
    reads, the original text and the map from scanned spans back to it."""

    signals: Sequence[Signal]
    matches: list[Match]
    text: str
    to_original: Callable[[int, int], tuple[int, int]]
    learned: float | None = None
    """The learned stage's probability that the text is an attack of the check's family (classifier checks)."""

    def span(self, match: Match) -> tuple[int, int]:
        return self.to_original(match.start, match.end)


@dataclass(frozen=True)
class CheckKind:
    signals: Callable[[GuardrailCheck], list[Signal]]
    judge: Callable[[GuardrailCheck, Evidence], list[Hit]]
    cases: Callable[[GuardrailCheck], list[str]] = field(default=lambda check: [])
    """Attack texts made from the check's own settings, for the self-test."""
    needs_matches: bool = True
    """Whether the check can only hit on matches of its signals (then it is not judged on a text without any)."""


def estimate_tokens(text: str) -> int:
    """A cheap token count: about four bytes of UTF-8 per token, as BPE tokenizers average on English."""
    size = len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))
    return math.ceil(size / 4)


def noisy_or(weights: Sequence[float]) -> float:
    remaining = 1.0
    for weight in weights:
        remaining *= 1.0 - weight
    return round(1.0 - remaining, 4)


def _base_hit(check: GuardrailCheck) -> dict:
    return dict(rule=check.name, type=check.type, action=check.action, mode=check.mode)


def judge_spans(check: GuardrailCheck, evidence: Evidence, wanted: frozenset[str] | None = None) -> list[Hit]:
    """One hit per match; with `wanted`, only the matches of those entities."""
    signals, base = evidence.signals, _base_hit(check)
    hits = []
    for m in evidence.matches:
        entity = m.entity or signals[m.signal].entity
        if wanted is None or entity in wanted:
            start, end = evidence.span(m)
            hits.append(Hit(**base, entity=entity, start=start, end=end, signals=(m.label or signals[m.signal].label,)))
    return hits


def judge_pii(check: GuardrailCheck, evidence: Evidence) -> list[Hit]:
    """Span hits of the entities the check asks for (a resolving signal may recognise others)."""
    return judge_spans(check, evidence, frozenset(check.entities or ()))


def judge_topics(check: GuardrailCheck, evidence: Evidence) -> list[Hit]:
    first: dict[str, Match] = {}
    for m in evidence.matches:
        first.setdefault(evidence.signals[m.signal].entity, m)
    return [Hit(**_base_hit(check), entity=topic, start=s, end=e) for topic, m in first.items()
            for s, e in [evidence.span(m)]]


def judge_size(check: GuardrailCheck, evidence: Evidence) -> list[Hit]:
    tokens = estimate_tokens(evidence.text)
    return [Hit(**_base_hit(check), score=float(tokens))] if tokens > check.max_tokens else []


def judge_score(check: GuardrailCheck, evidence: Evidence) -> list[Hit]:
    """The noisy-or of the distinct signals' weights, with the learned stage's probability as one more signal
    when it reaches `LEARNED_FLOOR` and some rule signal found evidence (the model re-scores what the rules saw;
    it learned from a few hundred texts and does not block alone); a hit when the score reaches the threshold."""
    signals = evidence.signals
    strongest: dict[str, Match] = {}
    for m in evidence.matches:
        strongest.setdefault(signals[m.signal].key, m)
    weights = [signals[m.signal].weight for m in strongest.values()]
    labels = [signals[m.signal].label for m in strongest.values()]
    if strongest and evidence.learned is not None and evidence.learned >= LEARNED_FLOOR:
        weights.append(evidence.learned)
        labels.append(LEARNED_LABEL)
    score = noisy_or(weights)
    if not strongest or score < check.threshold:
        return []
    start, end = evidence.span(max(strongest.values(), key=lambda m: signals[m.signal].weight))
    return [Hit(**_base_hit(check), score=score, start=start, end=end, signals=tuple(labels))]


def regex_signals(check: GuardrailCheck) -> list[Signal]:
    return [Signal(f"regex.{check.name}.{i}", REGEX, p, entity=check.name) for i, p in enumerate(check.patterns)]


def topic_cases(check: GuardrailCheck) -> list[str]:
    return [f"Could you give me some detailed {topic} for my project?" for topic in check.topics]


def size_cases(check: GuardrailCheck) -> list[str]:
    return ["lorem ipsum " * (check.max_tokens * 2 + 8)]


def _classifier(signals: list[Signal]) -> CheckKind:
    return CheckKind(lambda check: signals, judge_score)


KINDS: dict[str, CheckKind] = {
    PII: CheckKind(lambda check: pii_signals(list(check.entities)), judge_pii),
    REGEX: CheckKind(regex_signals, judge_spans),
    INJECTION: _classifier(INJECTION_SIGNALS + MULTILINGUAL_INJECTION),
    JAILBREAK: _classifier(JAILBREAK_SIGNALS + MULTILINGUAL_JAILBREAK + PERSONA_JAILBREAK),
    TOXICITY: _classifier(TOXICITY_SIGNALS + MULTILINGUAL_TOXICITY),
    TOPIC: CheckKind(lambda check: topic_signals(check.name, list(check.topics)), judge_topics, topic_cases),
    SIZE: CheckKind(lambda check: [], judge_size, size_cases, needs_matches=False),
}
