"""Text normalisation before scanning: homoglyphs, small capitals, full-width and styled letters, zero-width and
tag characters.

Attackers write "ign\u200bore previous instructions" or use Cyrillic look-alikes so that word patterns miss.
Normalisation maps such characters to plain ASCII with one `str.translate` (C speed); pure-ASCII text, the
common case, is returned unchanged without a copy. When normalisation changed the length, `offset_map`
translates spans found in the normalised text back to the original text, so redaction cuts the right bytes.
"""

from __future__ import annotations

import unicodedata

ZERO_WIDTH = "\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180e\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c" \
             "\u202d\u202e\u2060\u2061\u2062\u2063\u2064\u2066\u2067\u2068\u2069\u3164\ufeff\uffa0"
"""Invisible characters dropped before scanning (soft hyphen, zero-width joiners, bidi controls, fillers)."""

HOMOGLYPHS = {
    # Cyrillic
    "а": "a", "в": "b", "е": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p", "с": "c", "т": "t", "у": "y",
    "х": "x", "ѕ": "s", "і": "i", "ј": "j", "ԁ": "d", "ԛ": "q", "ԝ": "w", "һ": "h", "ӏ": "l", "ɡ": "g",
    "А": "A", "В": "B", "Е": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P", "С": "C", "Т": "T", "У": "Y",
    "Х": "X", "Ѕ": "S", "І": "I", "Ј": "J",
    # Greek
    "α": "a", "ε": "e", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p", "τ": "t", "υ": "u", "χ": "x",
    "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M", "Ν": "N", "Ο": "O", "Ρ": "P",
    "Τ": "T", "Υ": "Y", "Χ": "X",
    # small capitals and other modifier-letter look-alikes ("ɪɢɴᴏʀᴇ")
    **dict(zip("ᴀʙᴄᴅᴇꜰɢʜɪᴊᴋʟᴍɴᴏᴘǫʀꜱᴛᴜᴠᴡʏᴢ", "abcdefghijklmnopqrstuvwyz")),
    # punctuation look-alikes
    "\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2010": "-", "\u2011": "-", "\u2012": "-",
    "\u2013": "-", "\u2014": "-", "\u00a0": " ", "\u2002": " ", "\u2003": " ", "\u2009": " ", "\u202f": " ",
}

TAG_BLOCK = (0xE0000, 0xE007F)
"""Unicode tag characters: invisible, dropped here; `deobfuscate.tag_text` reads the ASCII they hide."""

# Unicode blocks whose letters and digits NFKC folds to ASCII: full-width forms, mathematical alphanumerics
# (bold/italic/script "𝐢𝐠𝐧𝐨𝐫𝐞"), enclosed and letter-like symbols.
_FOLDED_BLOCKS = ((0xFF01, 0xFF5E), (0x1D400, 0x1D7FF), (0x2460, 0x24FF), (0x2100, 0x214F), (0x1F130, 0x1F189))
_COMBINING_MARKS = (0x0300, 0x036F)
_SURROGATES = (0xD800, 0xDFFF)
"""A JSON escape such as \\ud800 decodes to a lone surrogate, which no UTF-8 automaton can read: each becomes
U+FFFD, one for one, so spans still map back."""


def _translation_table() -> dict[int, str | None]:
    table: dict[int, str | None] = {ord(ch): None for ch in ZERO_WIDTH}
    table.update({code: None for code in range(TAG_BLOCK[0], TAG_BLOCK[1] + 1)})
    table.update({ord(k): v for k, v in HOMOGLYPHS.items()})
    table.update({code: None for code in range(_COMBINING_MARKS[0], _COMBINING_MARKS[1] + 1)})
    table.update({code: "\ufffd" for code in range(_SURROGATES[0], _SURROGATES[1] + 1)})
    for first, last in _FOLDED_BLOCKS:
        for code in range(first, last + 1):
            folded = unicodedata.normalize("NFKC", chr(code))
            if folded != chr(code) and folded.isascii() and folded.isprintable():
                table[code] = folded
    return table


TABLE = _translation_table()


def normalize(text: str) -> str:
    """The text with look-alikes folded to ASCII and invisible characters removed (identity for ASCII text)."""
    if text.isascii():
        return text
    return text.translate(TABLE)


def offset_map(text: str) -> list[int]:
    """For each character of `normalize(text)`, the index of the original character it came from, plus a final
    entry for the end of the text. Only called when normalisation changed the length and a span must be mapped."""
    origin: list[int] = []
    for index, char in enumerate(text):
        replacement = TABLE.get(ord(char), char)
        if replacement:
            origin.extend([index] * len(replacement))
    origin.append(len(text))
    return origin


class SpanMapper:
    """Maps spans of the normalised text back to the original; identity when the lengths agree."""

    def __init__(self, original: str, normalized: str) -> None:
        self._original = original
        self._identity = len(original) == len(normalized)
        self._origin: list[int] | None = None

    def __call__(self, start: int, end: int) -> tuple[int, int]:
        if self._identity:
            return start, end
        if self._origin is None:
            self._origin = offset_map(self._original)
        last = self._origin[end - 1] + 1 if end > start else self._origin[start]
        return self._origin[start], last
