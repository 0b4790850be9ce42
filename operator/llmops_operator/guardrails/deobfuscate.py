"""Views of a text with one obfuscation undone, for the injection, jailbreak and toxicity checks.

An attacker hides an instruction by form (Unicode tag characters, letters spaced out or split by hyphens,
leetspeak, hex, reversed text, base64 cut into chunks, words spread over a numbered list) or by structure
(HTML that a browser never shows). Each view undoes one of these; the engine scans the views with the same
signals and the learned stage scores them. A view is only made when its trigger is present (a tag character, a
run of single letters, a hex run, ...), every step is one linear pass, and each view is at most as long as the
text it comes from, so the work stays linear in the input.

The patterns here use Python's `re` only where they are a single character class with fixed-width lookaround,
or fixed strings (no nested or alternating quantifiers, so no backtracking); everything with repetition runs on
RE2.
"""

from __future__ import annotations

import re

import re2

from llmops_operator.guardrails.decoding import decode_base64
from llmops_operator.guardrails.scanners import match_spans

MAX_VIEWS_CHARS = 4_000_000
"""Views beyond this many characters in total are not built (the text limit keeps them far below)."""

_TAG_RUN = re.compile("[\U000E0020-\U000E007E]+")
_SPACED_RUN = re2.compile(r"(?:^|\PL)\pL[ .\-_*|]\pL[ .\-_*|]\pL(?:\PL|$)")
"""Three single characters in a row: only then is the (slower, lookaround) join below run."""
_SPACED_GAP = re.compile(r"(?<=\b\w)[ .\-_*·|](?=\w\b)")
_WIDE_GAP = re.compile(r"\s{2,}")
_HYPHEN_IN_WORD = re.compile(r"(?<=[^\W\d_])-(?=[^\W\d_])")
_LETTER = r"[\pL\p{Nl}\p{No}]"
r"""Python's `[^\W\d_]` in RE2 (letters and non-decimal numerals; RE2's tables may know newer letters)."""
_HYPHEN_HINT = re2.compile(f"{_LETTER}-{_LETTER}")
"""A hyphen between letters: only then is the (lookaround) join below run; on 1 KB without one, RE2 answers
in a few microseconds where Python's `re` took tens."""
_LEET_MIXED = re2.compile(f"{_LETTER}[0-9@$!|]|[0-9@$!|]{_LETTER}")
"""A letter next to a digit or a leet symbol. On RE2: Python's `re` took about 130 µs on 1 KB without one."""
LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "9": "g", "@": "a",
                      "$": "s", "!": "i", "|": "l"})
_LEET_BYTES = bytes.maketrans(bytes(LEET), "".join(LEET.values()).encode("ascii"))
"""LEET for ASCII text: a byte table, at half the cost of str.translate's mapping lookups."""
_HEX_RUN = re2.compile(r"(?i)(?:\\x|0x)?[0-9a-f]{2}(?:[ :,]?(?:\\x|0x)?[0-9a-f]{2}){7,}")
_HEX_PREFIX = re.compile(r"\\x|0x|[ :,]", re.IGNORECASE)
_B64_TOKEN = r"[A-Za-z0-9+/]*(?:[a-z][A-Z]|[A-Z]{2}[a-z]|[A-Za-z][0-9+/]|[0-9+/][A-Za-z])[A-Za-z0-9+/]*={0,2}"
"""A chunk of base64: a case change ("aGlz", "SWdu") or a letter next to a digit, + or / ("IG1v") inside it;
prose words and digit groups ("+44 20 7946") have none."""
_B64_CHUNKS = re2.compile(rf"{_B64_TOKEN}(?:[ \t\r\n]+{_B64_TOKEN}){{2,}}")
_LIST_MARKER = re2.compile(r"(?m)^[ \t]*(?:\d{1,3}|[a-z])[.)][ \t]+")
_HIDDEN_HTML = re2.compile(
    r"(?is)<!--(.*?)-->|<([a-z][a-z0-9]{0,10})\b[^<>]{0,400}?(?:display\s*:\s*none|visibility\s*:\s*hidden"
    r"|font-size\s*:\s*0|opacity\s*:\s*0|color\s*:\s*(?:#fff\b|#ffffff\b|white\b)|\shidden\b|aria-hidden\s*=\s*.?true)"
    r"[^<>]{0,400}>([^<]+)")
_HTML_HINT = re.compile(r"<!--|hidden|display|font-size|opacity|color", re.IGNORECASE)
_TEMPLATE_HINT = re.compile(r"<\||_of_turn>|\[/?INST\]|<</?SYS>>")
_TEMPLATE_TOKEN = re2.compile(r"<\|[a-z_]{2,30}\|>|</?(?:start|end)_of_turn>|\[/?INST\]|<</?SYS>>")
COMMON_WORDS = frozenset(
    "the and you your all to of is are it in for that this me my not be with now what from "
    "la las el los de que y tu tus su las del por para una un no es "
    "le les et des tes ton vos est une pas pour du ce "
    "der die das und du deine nicht ist ein eine mit zu "
    "o os as do da e você não um uma seu sua".split())
REVERSED_COMMON_WORDS = frozenset(word[::-1] for word in COMMON_WORDS)


def tag_text(text: str) -> str:
    """The ASCII message hidden in Unicode tag characters (U+E0020..U+E007E), which render as nothing."""
    return " ".join("".join(chr(ord(c) - 0xE0000) for c in run) for run in _TAG_RUN.findall(text))


def joined(text: str) -> str:
    """Letters spaced out ("i g n o r e") or split by hyphens ("ig-nore") joined back into words."""
    if _SPACED_RUN.search(text):
        text = _SPACED_GAP.sub("", text)
    return _HYPHEN_IN_WORD.sub("", text) if "-" in text and _HYPHEN_HINT.search(text) else text


def despaced(text: str) -> str:
    """Text written one character at a time ("I ' m   g o i n g") read back: single spaces dropped, longer gaps
    kept as word breaks; only when most tokens are single characters."""
    tokens = text.split()
    if len(tokens) < 6 or len(tokens) * 3 < len(text) or sum(len(t) == 1 for t in tokens) * 10 < len(tokens) * 7:
        return ""
    return " ".join(word.replace(" ", "") for word in _WIDE_GAP.split(text))


def unleet(text: str) -> str:
    """Leetspeak read back as letters ("1gn0r3" -> "ignore")."""
    if text.isascii():
        return text.lower().encode("ascii").translate(_LEET_BYTES).decode("ascii")
    return text.lower().translate(LEET)


def hex_text(text: str) -> str:
    """Every run of at least eight hex bytes that decodes to readable UTF-8 text."""
    found = []
    for start, end in match_spans(_HEX_RUN, text):
        digits = _HEX_PREFIX.sub("", text[start:end])
        try:
            decoded = bytes.fromhex(digits[:len(digits) // 2 * 2]).decode("utf-8")
        except ValueError:
            continue
        if decoded.isprintable() or all(ch.isprintable() or ch.isspace() for ch in decoded):
            found.append(decoded)
    return "\n".join(found)


def base64_chunks(text: str) -> str:
    """Base64 cut into chunks separated by whitespace, joined and decoded (when it is readable text)."""
    found = []
    for start, end in match_spans(_B64_CHUNKS, text):
        decoded = decode_base64("".join(text[start:end].split()))
        if decoded is not None:
            found.append(decoded)
    return "\n".join(found)


def reversed_text(text: str) -> str:
    """The text read backwards, when backwards it reads more like language than forwards: its words, each read
    backwards, hold more distinct common words than they do forwards (one split, two set intersections)."""
    words = set(text.lower().split())
    if len(REVERSED_COMMON_WORDS.intersection(words)) > max(1, len(COMMON_WORDS.intersection(words))):
        return text[::-1]
    return ""


def list_items_joined(text: str) -> str:
    """An instruction spread over list items ("1. Ignore 2. all previous ...") read as one sentence."""
    if text.count("\n") < 2 or len(_LIST_MARKER.findall(text)) < 3:
        return ""
    return " ".join(_LIST_MARKER.sub(" ", text).split())


def hidden_html(text: str) -> str:
    """Text a browser would not show: HTML comments and elements hidden by style or attribute."""
    if "<" not in text or not _HTML_HINT.search(text):
        return ""
    return "\n".join(m.group(1) or m.group(3) or "" for m in _HIDDEN_HTML.finditer(text))


def without_template_tokens(text: str) -> str:
    """Chat-template control tokens (Llama-3, Gemma, ChatML, Llama-2) replaced by line breaks."""
    if "<" not in text and "[" not in text:
        return ""
    return _TEMPLATE_TOKEN.sub("\n", text) if _TEMPLATE_HINT.search(text) else ""


DECODERS = (despaced, hex_text, base64_chunks, reversed_text, list_items_joined, hidden_html, without_template_tokens)

_TOKEN_EDGE = r"[\t\n\x0b\x0c\r\x1c-\x1f ]"
"""What `str.split()` splits ASCII text on."""
_TOKEN_CHAR = r"[^\t\n\x0b\x0c\r\x1c-\x1f ]"
_TWO_SINGLE_TOKENS = f"(?:^|{_TOKEN_EDGE}){_TOKEN_CHAR}{_TOKEN_EDGE}+{_TOKEN_CHAR}(?:{_TOKEN_EDGE}|$)"
"""Two one-character tokens in a row. Text read one character at a time (`despaced`) needs six tokens, 70% of
them one character long, so its one-character tokens cannot all be kept apart by the others: two stand
together."""
_READABLE_BYTE = r"(?:0[9a-d]|1[c-f]|[2-6][0-9a-f]|7[0-9a-e]|[89ab][0-9a-f]|c[2-9a-f]|[de][0-9a-f]|f[0-4])"
_READABLE_HEX_RUN = rf"(?i)(?:\\x|0x)?{_READABLE_BYTE}(?:[ :,]?(?:\\x|0x)?{_READABLE_BYTE}){{7,}}"
"""`_HEX_RUN` made only of bytes readable text can hold (printable ASCII, whitespace, parts of a UTF-8
sequence): a run that decodes to text is one of these, so where none is there is no hex view (digit runs such
as order numbers hold control bytes)."""


class Triggers:
    """One RE2 set pass over the normalised text that says which views cannot differ from it, so they are not
    built: a view whose trigger pattern (the same one its builder tests first) matches nowhere is left out. On
    ASCII text the set also counts the common words and the reversed common words standing as tokens, which is
    the reversed-text test without splitting the text. `views(..., fast=False)` builds every view the long way;
    a unit test holds both to the same result on the whole corpus."""

    GATES = {"spaced": _SPACED_RUN.pattern, "hyphen": _HYPHEN_HINT.pattern, "leet": _LEET_MIXED.pattern,
             "hex": _READABLE_HEX_RUN, "base64": _B64_CHUNKS.pattern, "list": _LIST_MARKER.pattern,
             "single-tokens": _TWO_SINGLE_TOKENS}

    def __init__(self) -> None:
        self.set = re2.Set.SearchSet(re2.Options())
        self.gate_of: dict[int, str] = {}
        for name, pattern in self.GATES.items():
            self.gate_of[self.set.Add(pattern)] = name
        self.common, self.reversed = set(), set()
        for words, into in ((COMMON_WORDS, self.common), (REVERSED_COMMON_WORDS, self.reversed)):
            for word in sorted(w for w in words if w.isascii()):
                into.add(self.set.Add(f"(?i)(?:^|{_TOKEN_EDGE}){re2.escape(word)}(?:{_TOKEN_EDGE}|$)"))
        self.set.Compile()

    def __call__(self, text: str) -> tuple[set[str], bool | None]:
        """The gates that fired, and whether the text reads better backwards (None when it is not ASCII: the
        token test above holds for ASCII whitespace and case only)."""
        found = self.set.Match(text) or ()
        gates = {self.gate_of[i] for i in found if i in self.gate_of}
        if not text.isascii():
            return gates, None
        backwards = len(self.reversed.intersection(found)) > max(1, len(self.common.intersection(found)))
        return gates, backwards


TRIGGERS = Triggers()


def fast_candidates(normalized: str) -> list[str]:
    """The views of `views` whose triggers fired; the others would be empty or equal to the text."""
    gates, backwards = TRIGGERS(normalized)
    out = [joined(normalized)] if gates & {"spaced", "hyphen"} else []
    if "leet" in gates:
        out.append(unleet(normalized))
    if backwards is None or "single-tokens" in gates:
        out.append(despaced(normalized))
    if "hex" in gates:
        out.append(hex_text(normalized))
    if "base64" in gates:
        out.append(base64_chunks(normalized))
    if backwards is None:
        out.append(reversed_text(normalized))
    elif backwards:
        out.append(normalized[::-1])
    if "list" in gates:
        out.append(list_items_joined(normalized))
    return out + [hidden_html(normalized), without_template_tokens(normalized)]


def full_candidates(normalized: str) -> list[str]:
    out = [joined(normalized)]
    if _LEET_MIXED.search(normalized):
        out.append(unleet(normalized))
    return out + [decode(normalized) for decode in DECODERS]


def views(original: str, normalized: str, fast: bool = True) -> list[str]:
    """The deobfuscated views of a text that differ from it (tags come from the original: normalisation drops
    them); empty when nothing in the text looks obfuscated. `fast` skips, after one trigger pass, the views
    that cannot differ from the text; the result is the same."""
    candidates = [tag_text(original)] if not original.isascii() else []
    candidates += fast_candidates(normalized) if fast else full_candidates(normalized)
    out, total = [], 0
    for view in candidates:
        if view and view != normalized and view not in out:
            total += len(view)
            if total > MAX_VIEWS_CHARS:
                break
            out.append(view)
    return out
