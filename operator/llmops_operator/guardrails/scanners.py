"""Scanners: find every signal of a policy in a text.

`CombinedScanner` is what the engine uses: all signals joined into one alternation of named groups, so a text
is read once whatever the number of rules. `PerRuleScanner` runs each signal's regex on its own; it is the
baseline the benchmark and the tests compare against (same patterns, one pass per signal).
Both return (signal index, start, end) triples ordered by position.
"""

from __future__ import annotations

import re
from typing import Protocol, Sequence

from llmops_operator.guardrails.signals import Signal
from llmops_operator.guardrails.trie import trie_regex

RawMatch = tuple[int, int, int]

_NOT_EMBEDDABLE = re.compile(r"\\[1-9]|\(\?P[=<]|\(\?<[A-Za-z_]|\(\?\(")


class Scanner(Protocol):
    def scan(self, text: str) -> list[RawMatch]: ...


def embeddable(pattern: str) -> bool:
    """Whether a pattern keeps its meaning inside a larger alternation: no backreferences, named groups,
    conditionals or global inline flags (which Python only accepts at the very start of a regex)."""
    if _NOT_EMBEDDABLE.search(pattern):
        return False
    try:
        re.compile(f"x(?:{pattern})")
    except re.error:
        return False
    return True


_WORD_END = "\0"


def _case_insensitive_atom(char: str) -> str:
    """`[iI]` rather than `(?i:i)`: a branch starting with a plain character class is skipped by the regex
    engine without backtracking state, which keeps trigger tries cheap at every word start."""
    if char == _WORD_END:
        return r"\b"
    return f"[{char}{char.upper()}]" if char.isalpha() else re.escape(char)


def trigger_regex(triggers: set[str]) -> str:
    """A case-insensitive trie of trigger words: `word*` is a prefix, any other trigger a whole word."""
    words = [t[:-1] if t.endswith("*") else t + _WORD_END for t in sorted(triggers)]
    return trie_regex(words, _case_insensitive_atom)


def combined_pattern(signals: Sequence[Signal], indices: Sequence[int]) -> str:
    """One alternation for the given signals; the empty group `s<index>` after a signal's pattern names it.

    Signals are grouped by lead, and those with triggers behind one trie: `lead(?:(?=trie)(?:p1(?P<s1>)|...)|...)`.
    At a position where a group's lead or trigger trie fails, none of its signals is tried. Groups keep the order
    of their first signal, so the engine's family precedence holds (a regexDeny pattern is tried before the
    base64 finder). The name group comes last,
    empty, so that `lastindex` names the signal and each pattern starts with its own first operation."""
    by_lead: dict[str | None, list[int]] = {}
    for i in indices:
        by_lead.setdefault(signals[i].lead, []).append(i)
    ordered = sorted(by_lead.items(), key=lambda item: item[1][0])
    parts = []
    for lead, members in ordered:
        triggered = [i for i in members if signals[i].triggers]
        plain = [i for i in members if not signals[i].triggers]
        branches = []
        if triggered:
            words = {t for i in triggered for t in signals[i].triggers}
            branches.append(f"(?={trigger_regex(words)})(?:{_alternatives(signals, triggered)})")
        if plain:
            branches.append(_alternatives(signals, plain))
        parts.append(f"{lead or ''}(?:{'|'.join(branches)})")
    return "|".join(parts)


def _alternatives(signals: Sequence[Signal], members: Sequence[int]) -> str:
    return "|".join(f"(?:{signals[i].pattern})(?P<s{i}>)" for i in members)


class CombinedScanner:
    """One regex for all embeddable signals; signals that cannot be embedded get a pass of their own."""

    def __init__(self, signals: Sequence[Signal]) -> None:
        joined = [i for i, s in enumerate(signals) if embeddable(s.pattern)]
        self.standalone = [(i, re.compile(signals[i].pattern)) for i in range(len(signals)) if i not in set(joined)]
        self.regex = re.compile(combined_pattern(signals, joined)) if joined else None
        self._signal_of_group = [-1] * ((self.regex.groups + 1) if self.regex else 0)
        for i in joined:
            self._signal_of_group[self.regex.groupindex[f"s{i}"]] = i

    def scan(self, text: str) -> list[RawMatch]:
        found: list[RawMatch] = []
        if self.regex is not None:
            signal_of = self._signal_of_group
            found = [(signal_of[m.lastindex], m.start(), m.end()) for m in self.regex.finditer(text)
                     if m.end() > m.start()]
        for index, regex in self.standalone:
            found.extend((index, m.start(), m.end()) for m in regex.finditer(text) if m.end() > m.start())
        if self.standalone:
            found.sort(key=lambda match: match[1])
        return found


class PerRuleScanner:
    """The naive baseline: each signal's regex scans the whole text on its own."""

    def __init__(self, signals: Sequence[Signal]) -> None:
        self.regexes = [re.compile(signal.pattern) for signal in signals]

    def scan(self, text: str) -> list[RawMatch]:
        found = [(index, m.start(), m.end()) for index, regex in enumerate(self.regexes)
                 for m in regex.finditer(text) if m.end() > m.start()]
        found.sort(key=lambda match: match[1])
        return found
