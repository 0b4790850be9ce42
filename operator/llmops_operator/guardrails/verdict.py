"""Verdicts: what the engine decided about one text, without ever repeating the text it flagged.

A hit names the rule (check), its type, the entity or signals found and the span offsets in the original text;
a redacted verdict carries the redacted text, in which every secret span is already replaced.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

ALLOWED, BLOCKED, REDACTED, FLAGGED, DROPPED = "allowed", "blocked", "redacted", "flagged", "dropped"
OUTCOME_ORDER = (ALLOWED, FLAGGED, REDACTED, DROPPED, BLOCKED)
"""Outcomes from mildest to strictest: a verdict takes the strictest effect of its hits."""
EFFECT_OUTCOME = {"flag": FLAGGED, "redact": REDACTED, "drop": DROPPED, "block": BLOCKED}
"""drop: a retrieved chunk is left out of the context (checks with scope retrieved only)."""


class Hit(NamedTuple):
    """One check's finding. A named tuple: the engine makes one per match on the hot path, at a third of the cost of
    a frozen dataclass (whose `__init__` sets each of the ten fields through `object.__setattr__`)."""

    rule: str
    """The check's name."""
    type: str
    """The check's type (piiRedaction, promptInjection, ...)."""
    action: str
    """The check's configured action: block, redact or flag."""
    mode: str
    """enforce or monitor; in monitor mode the hit only flags, whatever the action."""
    entity: str | None = None
    """PII entity, topic, or regexDeny check name."""
    start: int | None = None
    end: int | None = None
    score: float | None = None
    """Classifier score (0..1) for promptInjection, jailbreak and toxicity; tokens for maxTokens."""
    signals: tuple[str, ...] = ()
    """Names of the patterns that fired (never the matched text)."""
    error: str | None = None
    """Set when the check could not run and its onError is failClosed."""

    @property
    def effect(self) -> str:
        return self.action if self.mode == "enforce" else "flag"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"rule": self.rule, "type": self.type, "action": self.action, "effect": self.effect}
        optional = {"entity": self.entity, "start": self.start, "end": self.end, "score": self.score,
                    "signals": list(self.signals) or None, "error": self.error}
        out.update({k: v for k, v in optional.items() if v is not None})
        return out


@dataclass(frozen=True)
class CheckError:
    """A check that could not run and failed open (the text passed it unchecked)."""

    rule: str
    error: str

    def to_dict(self) -> dict[str, str]:
        return {"rule": self.rule, "error": self.error}


@dataclass(frozen=True)
class Verdict:
    direction: str
    outcome: str
    hits: tuple[Hit, ...] = ()
    text: str | None = None
    """The redacted text when outcome is redacted; otherwise None (the caller has the original)."""
    errors: tuple[CheckError, ...] = field(default=())
    hit_count: int | None = None
    """How many hits there were, when `hits` holds only the first of them (see `summarized`)."""

    @property
    def allowed(self) -> bool:
        """Whether the text (or its redacted version) may go on."""
        return self.outcome != BLOCKED

    @property
    def rules(self) -> tuple[str, ...]:
        """Names of the checks that hit, in policy order, each once."""
        return tuple(dict.fromkeys(hit.rule for hit in self.hits))

    def summarized(self, max_hits: int) -> "Verdict":
        """The same verdict with its first `max_hits` hits only (and `hit_count` saying how many there were)."""
        if len(self.hits) <= max_hits:
            return self
        return replace(self, hits=self.hits[:max_hits], hit_count=len(self.hits))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"direction": self.direction, "outcome": self.outcome,
                               "hits": [hit.to_dict() for hit in self.hits]}
        if self.hit_count is not None:
            out["hitCount"] = self.hit_count
        if self.text is not None:
            out["text"] = self.text
        if self.errors:
            out["errors"] = [error.to_dict() for error in self.errors]
        return out


def outcome_of(hits: list[Hit]) -> str:
    strictest = ALLOWED
    for hit in hits:
        outcome = EFFECT_OUTCOME[hit.effect]
        if OUTCOME_ORDER.index(outcome) > OUTCOME_ORDER.index(strictest):
            strictest = outcome
    return strictest
