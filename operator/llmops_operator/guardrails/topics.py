"""Topic denylist: each topic in plain words becomes a word pattern.

"weapons manufacturing" matches "weapon manufacture" and "manufacturing of weapons": each word is cut to a stem
(its first letters, at least four) followed by any word ending, the words may be up to three words apart, and a
two-word topic also matches in the reverse order.
"""

from __future__ import annotations

import re

from llmops_operator.guardrails.signals import TOPIC, Signal

_GAP = r"(?:\W+\w+){0,3}?\W+"
_STOP_WORDS = {"a", "an", "the", "of", "and", "or", "to", "for", "in", "on", "with", "about"}


def stem(word: str) -> str:
    return word if len(word) <= 4 else word[:max(4, len(word) - 3)]


def stem_pattern(word: str) -> str:
    return re.escape(stem(word)) + (r"\w{0,3}" if len(word) <= 4 else r"\w*")


def topic_words(topic: str) -> list[str]:
    words = [w for w in re.findall(r"\w+", topic.lower()) if w not in _STOP_WORDS]
    if not words:
        raise ValueError(f"topic {topic!r} has no words to match")
    return words


def topic_pattern(topic: str) -> str:
    words = topic_words(topic)
    stems = [stem_pattern(w) for w in words]
    forward = _GAP.join(stems)
    if len(stems) == 2:
        return rf"(?i:\b(?:{forward}|{stems[1]}{_GAP}{stems[0]})\b)"
    return rf"(?i:\b{forward}\b)"


def topic_signals(check_name: str, topics: list[str]) -> list[Signal]:
    signals = []
    for index, topic in enumerate(topics):
        signals.append(Signal(f"topic.{check_name}.{index}", TOPIC, topic_pattern(topic), entity=topic))
    return signals
