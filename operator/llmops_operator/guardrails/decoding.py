"""Encoded payloads: base64 blobs and rot13 text are decoded so the same signals can be looked for inside.

"aWdub3JlIGFsbCBwcmV2aW91cyBpbnN0cnVjdGlvbnM=" is "ignore all previous instructions". The combined scan finds
base64-looking blobs and rot13 hints; the engine decodes them and scans the decoded text once more.
"""

from __future__ import annotations

import base64
import binascii
import codecs

from llmops_operator.guardrails.signals import ENCODING, Signal, char_in, not_between

_BASE64_CHAR = char_in("+/=_-", word=True)

BASE64 = Signal("encoding.base64", ENCODING,
                r"[A-Za-z0-9+/]{20,}={0,2}", guard=not_between(_BASE64_CHAR, _BASE64_CHAR))
ROT13_HINT = Signal("encoding.rot13", ENCODING, r"(?i:\b(?:rot[-_ ]?13|caesar\s+cipher)\b)")
ENCODING_SIGNALS = [BASE64, ROT13_HINT]

MIN_PRINTABLE = 0.9
"""Share of printable characters a decoded blob needs to count as text rather than binary."""


def decode_base64(blob: str) -> str | None:
    """The decoded text of a base64 blob, or None when it is not base64 of readable text."""
    padded = blob + "=" * (-len(blob) % 4)
    try:
        decoded = base64.b64decode(padded, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    if not decoded:
        return None
    printable = sum(ch.isprintable() or ch.isspace() for ch in decoded)
    return decoded if printable / len(decoded) >= MIN_PRINTABLE else None


def decode_rot13(text: str) -> str:
    """rot13 keeps every character at its place, so spans in the decoded text are spans in the original."""
    return codecs.encode(text, "rot13")
