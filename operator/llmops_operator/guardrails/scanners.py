"""The scanner: every signal of a policy found in one pass of RE2, an automaton engine.

All signals are joined into one alternation (and, for naming a match's signal where a set cannot, once more
with an empty capture group after each). RE2 runs it in time linear in the text (no backtracking, whatever a
tenant writes), and keeps the leftmost-first preference of a backtracking engine: where two signals match at
one position, the earlier one reports it.
The text is scanned as UTF-8 bytes, encoded once; spans are turned back into character offsets in one pass.
A signal's `guard` (the characters around a candidate) is applied here; its `refine` is the engine's.
"""

from __future__ import annotations

from typing import Container, Iterator, Sequence

import re2

from llmops_operator.api.v1alpha1.guardrail import re2_options
from llmops_operator.guardrails.signals import Signal

_UNANCHORED = re2._Anchor.UNANCHORED
RawMatch = tuple[int, int, int]
"""(signal index, start, end) in characters of the scanned text."""
SCAN_MEMORY_BYTES = 64 << 20
"""RE2's budget for a whole policy's automaton; past it RE2 still runs in linear time, only slower."""


def _groups(pattern: str) -> int:
    return re2.compile(pattern, re2_options()).groups


class Re2Scanner:
    """One RE2 alternation for all the signals of a direction.

    A match is found by the alternation without capture groups; which signal it is comes from an RE2 set of the
    signals anchored at both ends of the match, with the character on each side as context (for `\\b`, `^`,
    `$`; a match at the text's edge or next to a non-ASCII character asks the groups): the first signal that
    matches exactly there is the one the alternation chose, since no earlier signal matches at that start at
    all. The set is compiled at the first match, so a policy that is only loaded pays nothing for it. Asking the
    alternation for its groups instead costs about 5 µs a match (RE2 runs its slowest engine over the whole
    program to fill them); `_matches_grouped` is that reference."""

    def __init__(self, signals: Sequence[Signal]) -> None:
        self.signals = tuple(signals)
        parts, self._signal_of_group = [], [-1]
        for index, signal in enumerate(self.signals):
            self._signal_of_group += [index] * (_groups(signal.pattern) + 1)
            parts.append(f"(?:{signal.pattern})()")
        options = re2_options()
        options.max_mem = SCAN_MEMORY_BYTES
        self.regex = re2.compile("|".join(parts).encode(), options) if parts else None
        self.plain = re2.compile("|".join(f"(?:{s.pattern})" for s in self.signals).encode(), options) if parts \
            else None
        self._guards = tuple(signal.guard for signal in self.signals)
        self._exact: re2.Set | None = None

    def scan(self, text: str, keep: Container[int] | None = None) -> list[RawMatch]:
        """The matches in text order; with `keep`, only those of these signals (the others are still matched,
        so they hide what they hide, but not guarded)."""
        if self.regex is None or not text:
            return []
        encoded = text.encode("utf-8", "surrogatepass")
        found = self._matches(encoded)
        if len(encoded) != len(text):
            found = _to_characters(encoded, found)
        if keep is not None:
            found = [m for m in found if m[0] in keep]
        guards = self._guards
        return [m for m in found if guards[m[0]] is None or guards[m[0]](text, m[1], m[2])]

    def _matches(self, encoded: bytes) -> list[RawMatch]:
        """Non-overlapping leftmost-first matches, as finditer."""
        return [(self._signal_at(encoded, *spans[0]), *spans[0]) for spans in _native_matches(self.plain, encoded)]

    def _signal_at(self, encoded: bytes, start: int, stop: int) -> int:
        # One context byte is one character only in ASCII; elsewhere, and at the text's edges, the groups say it.
        if 0 < start and stop < len(encoded) and encoded[start - 1] < 0x80 and encoded[stop] < 0x80:
            exact = (self._exact or self._compile_exact()).Match(encoded[start - 1:stop + 1])
            if exact:
                return min(exact)
        return self._matches_grouped(encoded, start, start + 1)[0][0]

    def _compile_exact(self) -> re2.Set:
        options = re2_options()
        options.max_mem = SCAN_MEMORY_BYTES
        exact = re2.Set.FullMatchSet(options)
        for signal in self.signals:
            exact.Add(f"(?s:.)(?:{signal.pattern})(?s:.)")
        exact.Compile()
        self._exact = exact  # two threads may both compile it; either result is the same set
        return exact

    def _matches_grouped(self, encoded: bytes, position: int = 0, until: int | None = None) -> list[RawMatch]:
        """The matches starting before `until`, each named by the alternation's capture groups."""
        found: list[RawMatch] = []
        for spans in _native_matches(self.regex, encoded, position):
            start, stop = spans[0]
            if until is not None and start >= until:
                break
            # Only the matching alternative's groups are set, and its empty marker group ends the match.
            found.append((self._signal_of_group[spans.index((stop, stop), 1)], start, stop))
        return found


class SetScanner:
    """Signals found independently of each other: an RE2 set says in one pass which of them match anywhere, and
    only those are searched on their own for their spans. Unlike the alternation, one signal's match never hides
    another's, wherever they overlap."""

    def __init__(self, signals: Sequence[Signal]) -> None:
        self.signals = tuple(signals)
        self.regexes = [re2.compile(signal.pattern, re2_options()) for signal in self.signals]
        self.set = AnywhereSet(self.signals).set

    def scan(self, text: str, keep: Container[int] | None = None) -> list[RawMatch]:
        if not self.signals or not text:
            return []
        found = []
        for index in sorted(self.set.Match(text) or ()):
            if keep is not None and index not in keep:
                continue
            guard = self.signals[index].guard
            found += [(index, start, end) for start, end in match_spans(self.regexes[index], text)
                      if guard is None or guard(text, start, end)]
        return found


class AnywhereSet:
    """Which of the signals' patterns match somewhere in a text: one RE2 set pass, guards not applied (so a
    signal left out is certain not to be found there, one named only possibly)."""

    def __init__(self, signals: Sequence[Signal]) -> None:
        options = re2_options()
        options.max_mem = SCAN_MEMORY_BYTES
        self.set = re2.Set.SearchSet(options)
        for signal in signals:
            self.set.Add(signal.pattern)
        self.set.Compile()

    def matching(self, text: str) -> list[int]:
        """The positions (in the order they were given) of the signals whose pattern matches in the text."""
        return (self.set.Match(text) or []) if text else []


def match_spans(regex: "re2._Regexp", text: str) -> list[tuple[int, int]]:
    """The spans of the non-empty matches `regex.finditer(text)` yields, without a match object per match: on ASCII
    text (byte offsets are character offsets) one native call per match, otherwise `finditer` itself."""
    if not text.isascii():
        return [match.span() for match in regex.finditer(text) if match.end() > match.start()]
    return [spans[0] for spans in _native_matches(regex, text.encode())]


def _native_matches(regex: "re2._Regexp", encoded: bytes, position: int = 0) -> Iterator[tuple]:
    """Each non-empty match from `position` on, in finditer's order: the spans of all the regex's groups, the
    whole match first, from one native call (the wrapper's match objects and per-group accessors cost more than
    the scan itself when a text holds many matches)."""
    native, end = regex._regexp, len(encoded)
    while position <= end:
        spans = native.Match(_UNANCHORED, encoded, position, end)
        start, stop = spans[0]
        if start < 0:
            return
        if stop > start:
            yield spans
        position = stop if stop > position else position + 1


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
