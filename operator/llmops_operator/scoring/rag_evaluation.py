"""RAG scores of a prompt candidate's evaluation outputs (pure): context recall and overlap faithfulness.

- context recall: of the sources an example expects (`expectedSources`: chunk ids or document paths), the share
  the answer's retrieval cited; a path matches a cited source equal to it or ending in `/<path>`;
- faithfulness: of the answer's content words (three letters or more, common function words left out), the share
  that occur in the retrieved context the model was given. An overlap measure: it catches answers that say
  things the sources do not, not paraphrases that say them in other words.

Each is averaged over the examples it applies to; None when none does.
"""

from __future__ import annotations

import re
from typing import Iterable, Sequence

WORD = re.compile(r"[a-z0-9][a-z0-9_-]{2,}")
FUNCTION_WORDS = frozenset(
    "the and for are but not you your with this that from have has had was were will would can could should "
    "its it's into about than then them they their there here what which who when where how why all any each "
    "also may might must our out one two use used using very more most such only own same other some".split())


def content_words(text: str) -> set[str]:
    return {w for w in WORD.findall(text.lower()) if w not in FUNCTION_WORDS}


def cited(expected: str, sources: Iterable[str]) -> bool:
    return any(s == expected or s.endswith("/" + expected.lstrip("/")) for s in sources)


def context_recall(expected: Sequence[str], sources: Sequence[str]) -> float:
    """Share of `expected` sources found among the cited ids and sources."""
    return sum(1 for e in expected if cited(e, sources)) / len(expected)


def faithfulness(answer: str, context: str) -> float | None:
    """Share of the answer's content words found in the context; None for an answer without any."""
    words = content_words(answer)
    if not words:
        return None
    return len(words & content_words(context)) / len(words)


def mean(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(sum(present) / len(present), 4) if present else None
