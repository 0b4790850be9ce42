"""Digit strings: one candidate signal, then validators decide whether it is a card, an SSN, a national ID or a
phone number.

A single pattern finds runs of digits with any common separator (space, dot, dash, slash, parentheses), so that
a card written `4111.1111.1111.1111` or an SSN without dashes is a candidate at all, and no kind of number can
hide another that starts at the same place. Each candidate is tried whole and then by the runs of its digit
groups that start or end it (a card followed by an expiry date), longest first, against the validators in `KINDS`
order; the whole
candidate is finally tried as a phone number with the `phonenumbers` library, the reference for numbering
plans. A candidate is at most 25 digits and 12 groups, so the work per candidate is bounded and the scan stays
linear in the text.

A kind whose only defence is one check digit (a bare 9-digit BSN passes the eleven-test one time in eleven) is
accepted only with a context word in the 48 characters before it; so is a bare digit run as a phone number.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Callable

import phonenumbers

from llmops_operator.guardrails import identifiers as ids
from llmops_operator.guardrails.normalize import normalize
from llmops_operator.guardrails.signals import Resolved, is_word

NUMBER_PATTERN = r"(?:\+ ?|\(|\b)\d(?:(?:[ ./-]| - |\) ?| ?\()?\d){6,24}[Xx]?\b"
"""7 to 25 digits, single separators between them; the trailing X of a Chinese ID."""
CONTEXT_CHARS = 48
MAX_GROUPS = 12


@dataclass(frozen=True)
class ContextWords:
    """Any of the words, not inside a longer word, as they read after normalisation (look-alike letters
    folded: the Cyrillic `телефон` is scanned as `тeлeфoн`)."""

    words: tuple[str, ...]
    pattern: re.Pattern[str]

    def search(self, before: str) -> bool:
        # A substring test first: most text holds none of the words, and the pattern's lookbehind at every
        # position costs microseconds per candidate. A plain loop, at half the cost of any() over a generator.
        for word in self.words:
            if word in before:
                return self.pattern.search(before) is not None
        return False


def _context(*words: str) -> ContextWords:
    folded = tuple(normalize(w) for w in words)
    return ContextWords(folded, re.compile(r"(?<!\w)(?:" + "|".join(re.escape(w) for w in folded) + r")(?!\w)"))


CONTEXT = {
    "us-ssn": _context("ssn", "social security", "ss#", "ss no", "soc sec", "seguro social"),
    "ca-sin": _context("sin", "social insurance", "nas", "assurance sociale"),
    "nl-bsn": _context("bsn", "burgerservicenummer", "sofinummer", "sofi", "citizen service number"),
    "pl-pesel": _context("pesel"),
    "de-steuer-id": _context("steuer-id", "steuerid", "steuer", "idnr", "identifikationsnummer", "tax id",
                             "steueridentifikationsnummer", "tin"),
    "in-aadhaar": _context("aadhaar", "aadhar", "uidai", "uid", "आधार"),
    "se-personnummer": _context("personnummer", "personnr", "samordningsnummer", "personal identity number"),
    "phone": _context("phone", "call", "tel", "mobile", "cell", "whatsapp", "sms", "text me", "fax", "telefon",
                      "téléphone", "telephone", "portable", "appel", "appelle", "teléfono", "llama", "llámame",
                      "móvil", "celular", "número", "numero", "handy", "ruf", "anrufen", "telefone", "ligue",
                      "電話", "电话", "手机", "телефон", "звони", "номер", "携帯"),
}


@dataclass(frozen=True)
class Kind:
    label: str
    entity: str
    valid: Callable[[str], bool]
    lengths: tuple[int, ...]
    formats: tuple[tuple[int, ...], ...] = ()
    """Group lengths that make a formatted number specific enough without a context word."""
    bare: bool = False
    """Whether an unseparated run is accepted without a context word."""


KINDS = (
    Kind("credit-card", "creditCard", ids.card_valid, tuple(range(13, 20)), bare=True),
    Kind("us-ssn", "ssn", ids.us_ssn_valid, (9,), formats=((3, 2, 4),)),
    Kind("br-cpf", "nationalId", ids.br_cpf_valid, (11,), formats=((3, 3, 3, 2),), bare=True),
    Kind("br-cnpj", "nationalId", ids.br_cnpj_valid, (14,), formats=((2, 3, 3, 4, 2),), bare=True),
    Kind("cn-resident-id", "nationalId", ids.cn_resident_id_valid, (18,), formats=((6, 8, 4),), bare=True),
    Kind("fr-nir", "nationalId", ids.fr_nir_valid, (15,), formats=((1, 2, 2, 2, 3, 3, 2), (13, 2)), bare=True),
    Kind("in-aadhaar", "nationalId", ids.in_aadhaar_valid, (12,), formats=((4, 4, 4),)),
    Kind("se-personnummer", "nationalId", ids.se_personnummer_valid, (10, 12), formats=((6, 4), (8, 4))),
    Kind("ca-sin", "nationalId", ids.ca_sin_valid, (9,), formats=((3, 3, 3),)),
    Kind("pl-pesel", "nationalId", ids.pl_pesel_valid, (11,)),
    Kind("de-steuer-id", "nationalId", ids.de_steuer_id_valid, (11,), formats=((2, 3, 3, 3),)),
    Kind("nl-bsn", "nationalId", ids.nl_bsn_valid, (9,), formats=((4, 2, 3),)),
)
"""Most specific first: where one digit string passes two validators, the earlier kind names it."""
KINDS_BY_LENGTH = {n: tuple(k for k in KINDS if n in k.lengths) for n in range(9, 20)}

PHONE_REGIONS = ("US", "GB", "FR", "DE", "ES", "IT", "PT", "BR", "MX", "IN", "NL", "BE", "CH", "PL", "SE", "CN",
                 "JP", "RU", "CA", "AU")
"""Regions tried for a number written without its country code after a context word."""
TRUNK_ZERO_REGIONS = ("GB", "FR", "DE", "NL", "BE", "CH", "SE", "AU", "JP", "CN", "IN", "BR", "IT")
"""A grouped number with a leading trunk 0 (`06 12 34 56 78`, `0151 23456789`) in these numbering plans."""
_NOT_PHONE = re.compile(r"\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}|\d{1,3}(?:\.\d{1,3}){3}")
"""Dates and dotted quads (IPv4 addresses, version numbers) are never phone numbers."""
_GROUP = re.compile(r"\d+[Xx]?")


def number_guard(text: str, start: int, end: int) -> bool:
    """Not glued to a word or a `+`, nor the tail of a code such as `INV-2024-000123` or `v2.0.1234567`."""
    before = text[start - 1] if start > 0 else " "
    if before == "+" or is_word(before) or (end < len(text) and is_word(text[end])):
        return False
    return not (before in "-/._" and start > 1 and text[start - 2].isalnum())


def _context_words(text: str, start: int) -> Callable[[str], bool]:
    """Whether a kind's context words occur in the CONTEXT_CHARS before text[start] (lower-cased once, when first
    asked), each kind searched at most once per candidate."""
    seen: dict[str, bool] = {}
    before: str | None = None

    def has(label: str) -> bool:
        nonlocal before
        if label not in seen:
            words = CONTEXT.get(label)
            if words is not None and before is None:
                before = text[max(0, start - CONTEXT_CHARS):start].lower()
            seen[label] = words is not None and words.search(before)
        return seen[label]
    return has


@functools.lru_cache(maxsize=1024)
def windows(shape: tuple[int, ...]) -> tuple[tuple[int, int, int, int, tuple[tuple[Kind, bool], ...]], ...]:
    """The runs of digit groups tried in a candidate written in groups of these lengths, in order: the whole
    candidate, then the runs that start or end it (a card then its expiry, a label's digits then the ID), longest
    first; the runs that do neither are not tried, which keeps the work per candidate linear in its groups. Each
    is (first group, group after it, its digits' offsets in the compact candidate, and the kinds of its length,
    each with whether its format alone lets the number stand). A part of a longer candidate is trusted by its
    format only for self-validating kinds: `6516-4512-8617-7074` holds a 4-4-4 run, which alone would be an
    Aadhaar number. Depends on the shape alone, so it is worked out once per shape."""
    prefix, count, out = [0], len(shape), []
    for length in shape:
        prefix.append(prefix[-1] + length)
    for width in range(count, 0, -1):
        for first in ((0,) if width == count else (0, count - width)):
            kinds = KINDS_BY_LENGTH.get(prefix[first + width] - prefix[first], ())
            if kinds:
                part = shape[first:first + width]
                trusted = tuple((kind, kind.bare or (width == count and part in kind.formats)) for kind in kinds)
                out.append((first, first + width, prefix[first], prefix[first + width], trusted))
    return tuple(out)


def identify(digits: str, kinds: tuple[tuple[Kind, bool], ...], context: Callable[[str], bool]) -> Kind | None:
    """The first of the kinds the digits are a valid number of, or None."""
    plain = digits.isdigit()
    for kind, trusted in kinds:
        if not (plain or kind.label == "cn-resident-id"):
            continue
        # Whether the number may stand is asked before its check digits: a format or a context word is one
        # lookup, while a date or Verhoeff check costs microseconds on every digit run that is not an ID.
        if (trusted or context(kind.label)) and kind.valid(digits):
            return kind
    return None


def phone_valid(candidate: str, groups: list[str], shape: tuple[int, ...], context: Callable[[str], bool]) -> bool:
    """A phone number by `phonenumbers`: international (+ or 00) as written, national in one of
    PHONE_REGIONS when it is written in groups (of the lengths in `shape`) or after a context word."""
    digits = sum(shape)
    if not 7 <= digits <= 15 or _NOT_PHONE.fullmatch(candidate):
        return False
    if candidate.startswith(("+", "00")):
        international = "+" + candidate[2:] if candidate.startswith("00") else candidate
        return _valid_in(international, (None,))
    trunk = candidate.lstrip("(").startswith("0") and len(groups) >= 2 and max(shape) <= 8
    if trunk and _valid_in(candidate, TRUNK_ZERO_REGIONS):
        return True
    # The North American plan's structure (area code and exchange start with 2-9); fictional 555 numbers fit
    # it, and a person's number in a prompt is personal data whatever its exchange.
    if shape == (3, 3, 4) and groups[0][0] in "23456789" and groups[1][0] in "23456789":
        return True
    return digits >= 9 and context("phone") and _valid_in(candidate, PHONE_REGIONS)


@functools.lru_cache(maxsize=4096)
def _valid_in(candidate: str, regions: tuple[str | None, ...]) -> bool:
    """Whether `phonenumbers` finds the candidate valid in any of the regions. About 50 µs a region, so results
    are remembered: a signature or a contact repeated across a conversation is validated once per worker."""
    for region in regions:
        try:
            if phonenumbers.is_valid_number(phonenumbers.parse(candidate, region)):
                return True
        except phonenumbers.NumberParseException:
            continue
    return False


def resolve_number(text: str, start: int, end: int) -> Resolved | None:
    """What the digit string at text[start:end] is: tried whole, then by runs of its groups, then as a phone
    number."""
    candidate = text[start:end]
    groups = _GROUP.findall(candidate)[:MAX_GROUPS]
    shape = tuple(map(len, groups))
    context, tried = _context_words(text, start), windows(shape)
    if tried:
        compact = "".join(groups).upper()
        for first, stop, low, high, kinds in tried:
            kind = identify(compact[low:high], kinds, context)
            if kind is not None:
                spans = [m.span() for m in _GROUP.finditer(candidate)]
                return Resolved(start + spans[first][0], start + spans[stop - 1][1], kind.entity, kind.label)
    if phone_valid(candidate, groups, shape, context):
        return Resolved(start, end, "phone", "phone")
    return None
