"""Incremental output checking for streamed completions: release text only once no match can still grow into it.

The guard holds back the last `window` characters of the model's output. `window` is derived from the policy: the
longest match any output-direction signal can make (the regex's maximum width; encoded-payload detectors
excepted), plus a margin for lookarounds,
capped at MAX_WINDOW so that an unbounded pattern (`\\d+`) cannot make the guard hold the whole answer. A match
that starts before the release point is then complete in the text the guard has seen, so it is redacted before
any of it leaves; a match that straddles the release point moves the release point back to its start.

Between releases the guard checks only what can still change: the held text and the `window` characters
before it (a match starting earlier ends before the held text), so each chunk costs the same however long the
answer grows. Every FULL_RECHECK_CHARS of new text, and at the end, it checks the whole answer, so classifier
checks (toxicity) whose signals lie far apart judge the answer as a whole, as the non-streamed path does; the
final verdict is the whole answer's. A blocked verdict stops the stream: nothing more is released, the caller
sends an error event and cancels the model's request.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import re._parser as regex_parser  # the only public-enough way to ask a pattern for its maximum width
from typing import Awaitable, Callable, Sequence

from llmops_operator.guardrails.engine import Guardrail, redact
from llmops_operator.guardrails.signals import ENCODING
from llmops_operator.guardrails.verdict import ALLOWED, BLOCKED, REDACTED, Hit, Verdict

MAX_WINDOW = 256
"""The most characters a stream holds back; a longer match (from an unbounded pattern) is redacted from the
release point on, its earlier part having been released."""
RELEASE_STEP = 32
"""Text gathered past the window before a check releases it: one check per few tokens, not per token."""
FULL_RECHECK_CHARS = 1024
"""New text between two checks of the whole answer; the bounded checks in between keep a chunk's cost flat."""
LOOKAROUND_MARGIN = 8
"""Lookaheads and word boundaries read characters after a match that the width does not count."""

Check = Callable[[str, bool], Awaitable[Verdict]]
"""check(text, final): the verdict on text; `final` marks the one check of the finished answer (the one to count)."""


def pattern_width(pattern: str) -> int:
    """The longest text a pattern can match, MAX_WINDOW when unbounded or unreadable."""
    try:
        _, longest = regex_parser.parse(pattern).getwidth()
    except (re.error, RecursionError, OverflowError):
        return MAX_WINDOW
    return min(int(longest), MAX_WINDOW)


@functools.lru_cache(maxsize=8)  # one engine per policy file version; derived once
def guard_window(guardrail: Guardrail | None) -> int:
    """Characters a stream must hold back for this policy's output checks (0 when nothing checks output)."""
    if guardrail is None:
        return 0
    plan = guardrail.plans["output"]
    if not plan.checks:
        return 0
    # Encoding detectors (base64 blobs of any length) would pin every policy to the cap; a blob is checked like
    # any other text once it is in the guard's view.
    widest = max((pattern_width(s.pattern) for s in plan.signals if s.family != ENCODING), default=0)
    return min(widest + LOOKAROUND_MARGIN, MAX_WINDOW)


def _clipped(hits: Sequence[Hit], start: int, end: int) -> list[Hit]:
    """Redacting hits overlapping [start, end), their spans cut to it and made relative to start."""
    out = []
    for hit in hits:
        if hit.effect != "redact" or hit.start is None or hit.end is None:
            continue
        if hit.end > start and hit.start < end:
            out.append(hit._replace(start=max(hit.start, start) - start, end=min(hit.end, end) - start))
    return out


class StreamGuard:
    """Feed the model's text piece by piece; get back what may be sent. `verdict` is the last whole-text verdict."""

    def __init__(self, check: Check | None, window: int):
        self.check = check
        self.window = window
        self.text = ""
        self.released = 0
        """Characters of `text` already sent (redacted where needed)."""
        self.verdict: Verdict | None = None
        self.checked_whole = 0
        """Length of the text at the last check of the whole answer."""

    @property
    def blocked(self) -> bool:
        return self.verdict is not None and self.verdict.outcome == BLOCKED

    async def feed(self, piece: str) -> str:
        """Text that may be sent now ('' while it is held back or after a block)."""
        if self.blocked:
            return ""
        self.text += piece
        if self.check is None:
            return self._release(len(self.text), [])
        if len(self.text) - self.released < self.window + RELEASE_STEP:
            return ""
        return await self._judge(final=False)

    async def finish(self) -> str:
        """The rest of the text once the model is done ('' after a block)."""
        if self.blocked:
            return ""
        if self.check is None:
            return self._release(len(self.text), [])
        return await self._judge(final=True)

    async def _judge(self, final: bool) -> str:
        offset = max(0, self.released - self.window)
        if final or len(self.text) - self.checked_whole >= FULL_RECHECK_CHARS:
            offset, self.checked_whole = 0, len(self.text)
        self.verdict = await self.check(self.text[offset:], final)
        if self.verdict.outcome == REDACTED and self.verdict.hit_count is not None:
            # Only the first hits came back with the verdict: the rest cannot be placed, so nothing more leaves.
            self.verdict = dataclasses.replace(self.verdict, outcome=BLOCKED)
        if self.verdict.outcome == BLOCKED:
            return ""
        redacting = [h._replace(start=h.start + offset, end=h.end + offset) for h in self.verdict.hits
                     if h.effect == "redact" and h.start is not None and h.end is not None]
        point = len(self.text) if final else len(self.text) - self.window
        for hit in redacting:
            if hit.start < point < hit.end:
                point = hit.start
        return self._release(max(point, self.released), redacting)

    def _release(self, point: int, redacting: list[Hit]) -> str:
        piece = self.text[self.released:point]
        hits = _clipped(redacting, self.released, point)
        self.released = point
        return redact(piece, hits) if hits else piece

    @property
    def outcome(self) -> str:
        return self.verdict.outcome if self.verdict is not None else ALLOWED
