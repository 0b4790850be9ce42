"""Signals: the named patterns every detector is made of.

A signal is one regular expression plus what a hit means: which check type consumes it, the PII entity it
finds, the weight it adds to a classifier score, and an optional `refine` function that validates a candidate
(Luhn, mod-97, ...) and may narrow its span. The engine joins the signals of a whole policy into one regex.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

Refine = Callable[[str], "tuple[int, int] | None"]
"""Given the matched text, the (start, end) to keep relative to it, or None to reject the candidate."""

PII = "piiRedaction"
INJECTION = "promptInjection"
JAILBREAK = "jailbreak"
TOXICITY = "toxicity"
TOPIC = "topicDenylist"
REGEX = "regexDeny"
ENCODING = "encoding"
WORD_START = r"\b(?=\w)"
SYMBOL_WORD_START = r"(?<![\w@$])(?=[\w@$*!|+])"
"""Where a leetspeak word can start: "$hit", "@ss", "*ss"."""
"""Family of the signals that find encoded payloads (base64 blobs, rot13 hints); they trigger a re-scan."""


@dataclass(frozen=True)
class Signal:
    key: str
    """Unique name, such as `pii.email` or `injection.override`; shown in verdicts (never the matched text)."""
    family: str
    """The check type that consumes the signal's hits (or `encoding`)."""
    pattern: str
    """A regular expression without named groups or backreferences, so it can be embedded in a combined regex."""
    weight: float = 1.0
    """For classifier families: how strongly one hit indicates the class (0..1)."""
    entity: str | None = None
    """For PII: the entity type; for topics: the topic; for regexDeny: the check name."""
    refine: Refine | None = None
    lead: str | None = WORD_START
    """A zero-width regex true wherever a match of `pattern` can start (default: a word start); the combined
    regex tests it once per position for a whole group of signals, so most positions fail after one test.
    None: unknown (user patterns), tried at every position."""
    triggers: tuple[str, ...] = ()
    """Lower-case words one of which every match starts with (after the lead); `word*` stands for any word
    starting with `word`. Signals with triggers are tried only where one of them starts, found by one shared
    case-insensitive trie, so common words ("the", "dog") cost one failed branch."""

    @property
    def label(self) -> str:
        """The short name a verdict shows: the key without its family prefix."""
        return self.key.split(".", 1)[-1]




def words(text: str) -> tuple[str, ...]:
    """Triggers written as one space-separated string."""
    return tuple(text.split())
