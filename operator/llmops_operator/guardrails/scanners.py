"""The scanner: every signal of a policy found in one pass of RE2, an automaton engine.

All signals are joined into one alternation, each followed by an empty capture group that names it. RE2 runs
it in time linear in the text (no backtracking, whatever a tenant writes), and keeps the leftmost-first
preference of a backtracking engine: where two signals match at one position, the earlier one reports it.
The text is scanned as UTF-8 bytes, encoded once; spans are turned back into character offsets in one pass.
A signal's `guard` (the characters around a candidate) is applied here; its `refine` is the engine's.
"""

from __future__ import annotations

from typing import Sequence

import re2

from llmops_operator.api.v1alpha1.guardrail import re2_options
from llmops_operator.guardrails.signals import Signal

RawMatch = tuple[int, int, int]
"""(signal index, start, end) in characters of the scanned text."""
SCAN_MEMORY_BYTES = 64 << 20
"""RE2's budget for a whole policy's automaton; past it RE2 still runs in linear time, only slower."""


def _groups(pattern: str) -> int:
    return re2.compile(pattern, re2_options()).groups


class Re2Scanner:
    """One RE2 alternation for all the signals of a direction."""

    def __init__(self, signals: Sequence[Signal]) -> None:
        self.signals = tuple(signals)
        parts, self._markers = [], []
        group = 0
        for signal in self.signals:
            group += _groups(signal.pattern) + 1
            self._markers.append(group)
            parts.append(f"(?:{signal.pattern})()")
        options = re2_options()
        options.max_mem = SCAN_MEMORY_BYTES
        self.regex = re2.compile("|".join(parts).encode(), options) if parts else None

    def scan(self, text: str) -> list[RawMatch]:
        if self.regex is None or not text:
            return []
        encoded = text.encode("utf-8", "surrogatepass")
        found: list[RawMatch] = []
        for match in self.regex.finditer(encoded):
            index = self._signal_of(match)
            start, end = match.span()
            if end > start:
                found.append((index, start, end))
        if len(encoded) != len(text):
            found = _to_characters(encoded, found)
        return [m for m in found if self.signals[m[0]].guard is None or self.signals[m[0]].guard(text, m[1], m[2])]

    def _signal_of(self, match: "re2._Match") -> int:
        for index, marker in enumerate(self._markers):
            if match.start(marker) >= 0:
                return index
        raise RuntimeError("a match of the combined pattern named no signal")

def _to_characters(encoded: bytes, found: list[RawMatch]) -> list[RawMatch]:
    """Byte offsets into the UTF-8 text as character offsets, in one pass over the sorted offsets."""
    offsets = sorted({offset for _, start, end in found for offset in (start, end)})
    characters: dict[int, int] = {}
    previous_byte = previous_char = 0
    for offset in offsets:
        previous_char += len(encoded[previous_byte:offset].decode("utf-8", "surrogatepass"))
        characters[offset] = previous_char
        previous_byte = offset
    return [(index, characters[start], characters[end]) for index, start, end in found]
