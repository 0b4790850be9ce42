"""Signals: the named patterns every detector is made of.

A signal is one RE2 regular expression plus what a hit means: which check type consumes it, the PII entity it
finds, the weight it adds to a classifier score, an optional `guard` that looks at the characters around a
candidate (what a lookbehind or lookahead would say: RE2 has neither, and a one-character test is O(1)), and an
optional `refine` function that validates a candidate (Luhn, mod-97, ...) and may narrow its span.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

Refine = Callable[[str], "tuple[int, int] | None"]
"""Given the matched text, the (start, end) to keep relative to it, or None to reject the candidate."""
Guard = Callable[[str, int, int], bool]
"""Given the whole text and a candidate's span, whether its surroundings allow it."""
Resolve = Callable[[str, int, int], "Resolved | None"]
"""Given the whole text and a candidate's span, what the candidate is, or None to reject it."""


@dataclass(frozen=True)
class Resolved:
    """A candidate one signal found and a validator recognised as one of several kinds (a digit string that is a
    card, a national ID or a phone number): the span to keep, its entity and the label a verdict shows."""

    start: int
    end: int
    entity: str
    label: str

PII = "piiRedaction"
INJECTION = "promptInjection"
JAILBREAK = "jailbreak"
TOXICITY = "toxicity"
TOPIC = "topicDenylist"
REGEX = "regexDeny"
ENCODING = "encoding"
"""Family of the signals that find encoded payloads (base64 blobs, rot13 hints); they trigger a re-scan."""


@dataclass(frozen=True)
class Signal:
    key: str
    """Unique name, such as `pii.email` or `injection.override`; shown in verdicts (never the matched text)."""
    family: str
    """The check type that consumes the signal's hits (or `encoding`)."""
    pattern: str
    """An RE2 regular expression (no backreferences, no lookaround: matching is linear in the text)."""
    weight: float = 1.0
    """For classifier families: how strongly one hit indicates the class (0..1)."""
    entity: str | None = None
    """For PII: the entity type; for topics: the topic; for regexDeny: the check name."""
    refine: Refine | None = None
    guard: Guard | None = None
    resolve: Resolve | None = None
    """Instead of `refine`, for a signal whose candidates may be of several entities: reads the text around the
    candidate (a context word) and names the entity."""
    overlay: bool = False
    """Found on its own (an RE2 set), even where another signal's match covers the same words (a description of
    a persona that overlaps "no rules" or "uncensored AI", a framing that overlaps role-play)."""

    @property
    def label(self) -> str:
        """The short name a verdict shows: the key without its family prefix."""
        return self.key.split(".", 1)[-1]


def is_word(char: str) -> bool:
    """What `\\w` matches, for the character next to a candidate."""
    return char.isalnum() or char == "_"


def not_between(before: Callable[[str], bool] | None = None,
                after: Callable[[str], bool] | None = None) -> Guard:
    """A guard that refuses a candidate whose previous character satisfies `before` or whose next one `after`."""
    def guard(text: str, start: int, end: int) -> bool:
        if before is not None and start > 0 and before(text[start - 1]):
            return False
        return not (after is not None and end < len(text) and after(text[end]))
    return guard


def char_in(chars: str, word: bool = False) -> Callable[[str], bool]:
    """A character test: one of `chars`, or (with `word`) a word character."""
    return lambda char: char in chars or (word and is_word(char))
