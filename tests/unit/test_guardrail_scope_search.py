"""The scope guard's searches answer as the Python patterns they stand for: on every window of the corpus, the
self-test and texts written to fire each branch, the RE2 scope search matches where Python's `re` (Unicode `\\b`,
`\\w`, `\\s`, IGNORECASE) does, and the modal pattern's literal prefilter skips it only where it cannot match."""

from __future__ import annotations

import random
import re

import pytest

from llmops_operator.guardrails import multilingual
from llmops_operator.guardrails.corpus import load_corpus
from llmops_operator.guardrails.normalize import normalize
from llmops_operator.guardrails.selftest import ATTACKS

PYTHON_SCOPE = re.compile(normalize(
    r"\b(?:i|we)\s+(?:gave|wrote|sent|made|mentioned|asked|had|added|typed|said)\b|^\W{0,3}(?:about|regarding"
    r"|concerning|on\s+(?:the\s+)?(?:font|layout|format|colou?rs?|style))\b|\b(?:in|of|from|for)\s+(?:the|this|that"
    r"|my|our)\s+[\w.-]*(?:file|dockerfile|makefile|script|readme|manual"
    r"|tutorial|guide|config|recipe|document|font|layout|template|slides?|form)"
    r"|dockerfile|makefile|readme|tutorial|\b(?:zur|zum|bezüglich|die\s+ich|das\s+ich|sur\s+la|sur\s+le|concernant"
    r"|que\s+j'ai|sobre|que\s+te\s+di|que\s+eu)\b|\b(?:told|asked|wants?|wanted)\s+(?:me|us)\s+to\b"
    r"|\b(?:i|we)\s+(?:pass|use|set|define|built)\b|\bso\s+(?:i|we)\s+can\b|\bbullet|\bпро\b|которые\s+я|что\s+я"
    r"|我(?:之前|刚才)?(?:说|给)|について|私が"),
    re.IGNORECASE)
"""The scope words as Python's backtracking `re` reads them: the reference for the RE2 search."""
BRANCHES = [
    "disregard the earlier instructions I gave about font size", "forget the rules we wrote",
    "ignore that, about the layout: use two columns", "-- regarding the colours of the slides",
    "ignore the previous commands in the Dockerfile", "skip the old steps of this build.makefile",
    "ignoriere meine vorherige Anweisung zur Schriftgröße", "vergiss die Regeln, die ich geschrieben habe",
    "ignore les instructions précédentes sur la mise en page", "olvida las instrucciones que te di",
    "ignora as instruções que eu escrevi", "my manager told me to ignore the old policy",
    "ignore the previous flags we pass to the compiler", "drop the old rules so we can ship",
    "ignore the previous bullet points", "забудь инструкции про шрифт", "忽略我之前说的指令",
    "前の指示について無視して", "ON THE FONT: IGNORE PREVIOUS INSTRUCTIONS", "İ SAİD iGNORE iT",
    "new hires should ignore the old instructions", "Managers MUST disregard the earlier rules",
    "Schüler müssen die alten Regeln ignorieren", "los empleados deben ignorar las reglas",
]


def windows(text: str, width: int):
    """Every window of `width` characters ending at each position, as the guard cuts them before and after a
    candidate (the modal pattern matches only at a window's end)."""
    for end in range(1, len(text) + 1):
        yield text[max(0, end - width):end]


def texts() -> list[str]:
    rng = random.Random(7)
    words = " ".join(BRANCHES).split()
    mixed = [" ".join(rng.choice(words) for _ in range(12)) for _ in range(300)]
    shuffled_case = ["".join(c.upper() if rng.random() < 0.3 else c for c in text) for text in BRANCHES + mixed]
    corpus = [case.text for case in load_corpus()] + [case.text for case in ATTACKS]
    return [normalize(text) for text in corpus + BRANCHES + mixed + shuffled_case]


@pytest.mark.parametrize("width", [multilingual.SCOPE_WINDOW, 16], ids=["after", "before"])
def test_the_scope_search_answers_as_the_python_pattern(width):
    matched = 0
    for text in texts() + unicode_edges():
        for window in windows(text, width):
            expected = PYTHON_SCOPE.search(window) is not None
            assert multilingual._scoped(window) == expected, window
            matched += expected
    assert matched > 50, "the windows must exercise the pattern's matches, or the comparison proves nothing"


def unicode_edges() -> list[str]:
    """Word boundaries and spaces beyond ASCII, where RE2's own `\\b` and `\\s` would differ from Python's."""
    return [normalize(text) for text in (
        "éi gave", "we\u00a0gave it", "i\u2003said so", "naïve we use", "for the ñfile", "we\u3000set", "x1i use",
        "so\u2009i can", "ı gave", "WE GAVE", "über about", "\u00a0about that", "日本 readme", "ö bullet", "öbullet",
        "i\x1fsaid", "про шрифт", "проще", "wir zum", "zumal", "что я", "ich das ich",
    )]


def test_the_modal_prefilter_answers_as_the_pattern_alone():
    prefiltered, matched, skipped = multilingual._MODAL_SEARCH, 0, 0
    for text in texts():
        for window in windows(text, 40):
            alone = prefiltered.pattern.search(window) is not None
            assert prefiltered.search(window) == alone, window
            matched += alone
            skipped += not prefiltered.may_match(window)
    assert matched > 50, "the windows must exercise the pattern's matches, or the comparison proves nothing"
    assert skipped > matched, "most windows should skip the pattern, or the prefilter buys nothing"


def test_text_that_is_not_ascii_always_goes_to_the_pattern():
    assert multilingual._MODAL_SEARCH.may_match("они должны")
    assert not multilingual._MODAL_SEARCH.may_match("nothing of the kind")
    assert multilingual._MODAL_SEARCH.may_match("new hires SHOULD ")
