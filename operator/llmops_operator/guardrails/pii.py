"""Personal data and secrets: one signal per entity, with checksum validation where the format has one.

Validators turn look-alikes into non-hits: a 16-digit order number that fails the Luhn check is not a card, an
IBAN must pass ISO 7064 mod-97, a US SSN cannot start with 000, 666 or 9, a national ID carries its check digit.
Digit strings of every kind go through one candidate signal (`numbers.py`); secrets are in `secrets.py`,
validators in `identifiers.py`.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Callable

from llmops_operator.guardrails.identifiers import (
    card_valid, es_dni_valid, fr_nir_valid, it_codice_fiscale_valid, uk_nino_valid,
)
from llmops_operator.guardrails.numbers import NUMBER_PATTERN, number_guard, resolve_number
from llmops_operator.guardrails.secrets import SECRET_SIGNALS
from llmops_operator.guardrails.signals import PII, Refine, Signal, char_in, not_between


def iban_valid(text: str) -> bool:
    compact = text.replace(" ", "").upper()
    if not 15 <= len(compact) <= 34:
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


def iban_span(text: str) -> tuple[int, int] | None:
    return (0, len(text)) if iban_valid(text) else None


def _whole_if(valid: Callable[[str], bool]) -> Refine:
    """Keep the whole candidate when its characters, less separators, pass `valid`."""
    return lambda text: (0, len(text)) if valid(re.sub(r"[ .-]", "", text)) else None


DIGIT_WORDS = {
    "zero": "0", "oh": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6",
    "seven": "7", "eight": "8", "nine": "9",
    "zéro": "0", "un": "1", "deux": "2", "trois": "3", "quatre": "4", "cinq": "5", "sept": "7", "huit": "8",
    "neuf": "9",
    "cero": "0", "uno": "1", "dos": "2", "tres": "3", "cuatro": "4", "cinco": "5", "seis": "6", "siete": "7",
    "ocho": "8", "nueve": "9",
    "null": "0", "eins": "1", "zwei": "2", "drei": "3", "vier": "4", "fünf": "5", "sechs": "6", "sieben": "7",
    "acht": "8", "neun": "9",
}
"""Digits as words (en, fr, es, de) for cards read out or typed to dodge a digit pattern."""
_DIGIT_WORD = "|".join(sorted(DIGIT_WORDS, key=len, reverse=True))


def card_words_span(text: str) -> tuple[int, int] | None:
    digits = "".join(DIGIT_WORDS[w] for w in re.findall(r"[^\W\d_]+", text.lower()) if w in DIGIT_WORDS)
    return (0, len(text)) if card_valid(digits) else None


def ipv4_guard(text: str, start: int, end: int) -> bool:
    """Not part of a longer dotted number ("1.2.3.4.5") nor glued to a word."""
    if end + 1 < len(text) and text[end] == "." and text[end + 1].isdigit():
        return False
    return True


def ip_span(text: str) -> tuple[int, int] | None:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return None
    return 0, len(text)


def after_marker(text: str) -> tuple[int, int] | None:
    """Keep what follows the `key=`/`my name is` marker: the secret or the name, not the words before it."""
    marker = re.match(r"(?i)(?:.*?(?:[:=]|\bis\b|\bam\b|\.))\s*['\"]?", text)
    start = marker.end() if marker else 0
    end = len(text.rstrip("'\""))
    return (start, end) if end > start else None


_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_H = r"[0-9a-fA-F]{1,4}"

_LOCAL = r"[A-Za-z0-9._%+-]{1,64}"
_LABEL = r"[A-Za-z0-9-]{1,63}"
_AT = r"(?:@| @ | ?[\[({<] ?(?i:at|arroba|chez) ?[\])}>] ?)"
_DOT = r"(?:\.| \. | ?[\[({<] ?(?i:dot|punto|ponto|point|punkt) ?[\])}>] ?)"
_WORD_AT = r" (?i:at|arroba) "
_SPELLED_DOT = r"(?: ?[\[({<] ?(?i:dot|punto|ponto|point|punkt) ?[\])}>] ?| (?i:dot|punto|ponto|point|punkt) )"
"""A dot written out: with `at` as a plain word, only a spelled dot tells an address from \"I work at example.com\"."""
_COMMON_TLDS = ("com|org|net|edu|gov|io|co|uk|de|fr|es|it|nl|br|in|ru|cn|jp|info|biz|me|dev|ai|us|ca|au|ch|se|pl|"
                "pt|mx|ar|be|eu")

ENTITY_SIGNALS: dict[str, list[Signal]] = {
    "apiKey": SECRET_SIGNALS,
    "iban": [Signal("pii.iban", PII, r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b",
                    entity="iban", refine=iban_span)],
    "creditCard": [Signal("pii.credit-card-words", PII,
                          rf"(?i:\b(?:{_DIGIT_WORD})(?:[\s,-]{{1,3}}(?:{_DIGIT_WORD})){{12,18}}\b)",
                          entity="creditCard", refine=card_words_span)],
    "nationalId": [
        Signal("pii.uk-nino", PII, r"\b(?i:[A-Z]{2} ?\d{2} ?\d{2} ?\d{2} ?[A-D])\b", entity="nationalId",
               refine=_whole_if(uk_nino_valid)),
        Signal("pii.es-dni", PII, r"\b(?i:(?:\d{8}|[XYZ]-?\d{7})-?[A-Z])\b", entity="nationalId",
               refine=_whole_if(es_dni_valid)),
        Signal("pii.it-codice-fiscale", PII, r"\b(?i:[A-Z]{6}\d{2}[A-EHLMPR-T]\d{2}[A-Z]\d{3}[A-Z])\b",
               entity="nationalId", refine=_whole_if(it_codice_fiscale_valid)),
        Signal("pii.fr-nir-corsica", PII, r"\b[12] ?\d{2} ?\d{2} ?2[AB] ?\d{3} ?\d{3} ?\d{2}\b",
               entity="nationalId", refine=_whole_if(fr_nir_valid)),
    ],
    "email": [
        Signal("pii.email", PII, rf"\b{_LOCAL}{_AT}{_LABEL}(?:{_DOT}{_LABEL}){{0,8}}{_DOT}[A-Za-z]{{2,24}}\b",
               entity="email"),
        Signal("pii.email-spelled", PII, rf"\b{_LOCAL}{_WORD_AT}{_LABEL}(?:{_SPELLED_DOT}{_LABEL}){{0,4}}{_SPELLED_DOT}"
               rf"(?i:{_COMMON_TLDS})\b", entity="email"),
    ],
    "ipAddress": [
        Signal("pii.ipv4", PII, rf"\b{_OCTET}(?:\.{_OCTET}){{3}}\b", entity="ipAddress", guard=ipv4_guard),
        Signal("pii.ipv6", PII, rf"(?:(?:{_H}:){{7}}{_H}|(?:{_H}:){{1,7}}:(?:{_H}(?::{_H}){{0,6}})?"
               rf"|::(?:{_H}(?::{_H}){{0,6}}))", entity="ipAddress", refine=ip_span,
               guard=not_between(char_in(":", word=True), char_in(":", word=True))),
    ],
    "person": [Signal("pii.person", PII, r"(?:\b(?:Mr|Mrs|Ms|Miss|Dr|Prof)\.? |(?i:\bmy name is ))"
                      r"[A-Z][a-z]+(?: [A-Z][a-z]+){0,2}\b", entity="person", refine=after_marker)],
    "address": [Signal("pii.street-address", PII, r"\b\d{1,5}(?: [A-Z][a-z]+){1,4} (?:Street|St|Avenue|Ave|Road|Rd|"
                       r"Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|Place|Pl|Terrace|Parkway|Pkwy|Square|Sq)\b\.?",
                       entity="address")],
}
"""Signals per entity, most specific first: when two could match at one position the first wins."""

NUMBER_ENTITIES = ("creditCard", "ssn", "nationalId", "phone")
NUMBER_SIGNAL = Signal("pii.number", PII, NUMBER_PATTERN, entity="number", resolve=resolve_number,
                       guard=number_guard)
"""Every digit string, resolved into a card, SSN, national ID or phone number (or rejected) by `numbers.py`;
a check keeps the entities it asks for."""
ENTITY_ORDER = (*ENTITY_SIGNALS, *NUMBER_ENTITIES)


def pii_signals(entities: list[str]) -> list[Signal]:
    """The signals of the given entities, in the fixed precedence order (digit strings last: the IP, IBAN and
    e-mail patterns see a digit first)."""
    unknown = set(entities) - set(ENTITY_ORDER)
    if unknown:
        raise ValueError(f"unknown PII entities: {sorted(unknown)}")
    own = [signal for entity in ENTITY_SIGNALS if entity in entities for signal in ENTITY_SIGNALS[entity]]
    return own + [NUMBER_SIGNAL] if set(entities) & set(NUMBER_ENTITIES) else own
