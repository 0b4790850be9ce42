"""Personal data and secrets: one signal per entity, with checksum validation where the format has one.

Validators turn look-alikes into non-hits: a 16-digit order number that fails the Luhn check is not a card, an
IBAN must pass ISO 7064 mod-97, a US SSN cannot start with 000, 666 or 9, a Spanish DNI carries a check letter.
"""

from __future__ import annotations

import ipaddress
import re

from llmops_operator.guardrails.signals import PII, Signal, char_in, is_word, not_between


def luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


_CARD_PREFIX = re.compile(r"4|5[1-5]|2[2-7]|3[47]|3(?:0[0-5]|[68])|6(?:011|5|4[4-9])|35|62")


def card_span(text: str) -> tuple[int, int] | None:
    digits = re.sub(r"[ -]", "", text)
    if 13 <= len(digits) <= 19 and _CARD_PREFIX.match(digits) and luhn_valid(digits):
        return 0, len(text)
    return None


def iban_valid(text: str) -> bool:
    compact = text.replace(" ", "").upper()
    if not 15 <= len(compact) <= 34:
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


def iban_span(text: str) -> tuple[int, int] | None:
    return (0, len(text)) if iban_valid(text) else None


_DNI_LETTERS = "TRWAGMYFPDXBNJZSQVHLCKE"


def dni_span(text: str) -> tuple[int, int] | None:
    """Spanish DNI (8 digits + letter) or NIE (X/Y/Z + 7 digits + letter): the letter is number mod 23."""
    compact = text.replace("-", "")
    prefix = str("XYZ".index(compact[0])) if compact[0] in "XYZ" else compact[0]
    number = prefix + compact[1:-1]
    return (0, len(text)) if _DNI_LETTERS[int(number) % 23] == compact[-1] else None


def ssn_span(text: str) -> tuple[int, int] | None:
    """A US SSN as issued: area not 000, 666 or 9xx, group not 00, serial not 0000."""
    area, group, serial = text[:3], text[4:6], text[7:]
    if area in ("000", "666") or area[0] == "9" or group == "00" or serial == "0000":
        return None
    return 0, len(text)


_NINO_NEVER_ISSUED = ("BG", "GB", "NK", "KN", "TN", "NT", "ZZ")


def nino_span(text: str) -> tuple[int, int] | None:
    return None if text[:2] in _NINO_NEVER_ISSUED else (0, len(text))


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


def phone_span(text: str) -> tuple[int, int] | None:
    digits = sum(c.isdigit() for c in text)
    return (0, len(text)) if 7 <= digits <= 15 else None


def after_marker(text: str) -> tuple[int, int] | None:
    """Keep what follows the `key=`/`my name is` marker: the secret or the name, not the words before it."""
    marker = re.match(r"(?i)(?:.*?(?:[:=]|\bis\b|\bam\b|\.))\s*['\"]?", text)
    start = marker.end() if marker else 0
    end = len(text.rstrip("'\""))
    return (start, end) if end > start else None


_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_H = r"[0-9a-fA-F]{1,4}"

ENTITY_SIGNALS: dict[str, list[Signal]] = {
    "apiKey": [
        Signal("pii.private-key", PII, r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----"
               r"(?:[A-Za-z0-9+/=\s]*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----)?", entity="apiKey"),
        Signal("pii.aws-access-key", PII, r"\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b", entity="apiKey"),
        Signal("pii.github-token", PII, r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{60,255})\b",
               entity="apiKey"),
        Signal("pii.slack-token", PII, r"\b(?:xox[abposr]-[A-Za-z0-9-]{10,}|https://hooks\.slack\.com/services/"
               r"T[A-Za-z0-9]+/B[A-Za-z0-9]+/[A-Za-z0-9]+)", entity="apiKey"),
        Signal("pii.openai-key", PII, r"\bsk-(?:proj-|svcacct-|ant-api\d\d-)?[A-Za-z0-9_-]{32,}", entity="apiKey"),
        Signal("pii.google-api-key", PII, r"\bAIza[0-9A-Za-z_-]{35}", entity="apiKey",
               guard=not_between(after=char_in("-", word=True))),
        Signal("pii.stripe-key", PII, r"\b[rs]k_(?:live|test)_[0-9a-zA-Z]{24,}", entity="apiKey"),
        Signal("pii.jwt", PII, r"\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}", entity="apiKey"),
        Signal("pii.assigned-secret", PII,
               r"(?i:\b(?:api[_-]?key|secret(?:[_-]?key)?|access[_-]?token|auth[_-]?token|password|passwd)"
               r"\s*[:=]\s*)['\"]?[A-Za-z0-9_\-/+=.]{12,}['\"]?", entity="apiKey", refine=after_marker),
    ],
    "iban": [Signal("pii.iban", PII, r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b",
                    entity="iban", refine=iban_span)],
    "creditCard": [Signal("pii.credit-card", PII, r"\b\d(?:[ -]?\d){12,18}\b", entity="creditCard",
                          refine=card_span)],
    "ssn": [Signal("pii.us-ssn", PII, r"\b\d{3}(?:-\d{2}-|\s\d{2}\s)\d{4}\b", entity="ssn",
                   refine=ssn_span)],
    "nationalId": [
        Signal("pii.uk-nino", PII, r"\b[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b",
               entity="nationalId", refine=nino_span),
        Signal("pii.es-dni", PII, r"\b(?:\d{8}|[XYZ]-?\d{7})-?[A-Z]\b", entity="nationalId", refine=dni_span),
    ],
    "email": [Signal("pii.email", PII, r"\b[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}"
                                       r"(?:\.[A-Za-z0-9-]{1,63}){0,8}\.[A-Za-z]{2,24}\b",
                     entity="email")],
    "ipAddress": [
        Signal("pii.ipv4", PII, rf"\b{_OCTET}(?:\.{_OCTET}){{3}}\b", entity="ipAddress", guard=ipv4_guard),
        Signal("pii.ipv6", PII, rf"(?:(?:{_H}:){{7}}{_H}|(?:{_H}:){{1,7}}:(?:{_H}(?::{_H}){{0,6}})?"
               rf"|::(?:{_H}(?::{_H}){{0,6}}))", entity="ipAddress", refine=ip_span,
               guard=not_between(char_in(":", word=True), char_in(":", word=True))),
    ],
    "phone": [Signal("pii.phone", PII, r"(?:\+\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{2,4}(?:[ .-]?\d{2,4}){1,4}"
                     r"|(?:\(\d{3}\)\s?|\b\d{3}[.-])\d{3}[ .-]\d{4})", entity="phone", refine=phone_span,
                     guard=not_between(char_in("+", word=True), is_word))],
    "person": [Signal("pii.person", PII, r"(?:\b(?:Mr|Mrs|Ms|Miss|Dr|Prof)\.? |(?i:\bmy name is ))"
                      r"[A-Z][a-z]+(?: [A-Z][a-z]+){0,2}\b", entity="person", refine=after_marker)],
    "address": [Signal("pii.street-address", PII, r"\b\d{1,5}(?: [A-Z][a-z]+){1,4} (?:Street|St|Avenue|Ave|Road|Rd|"
                       r"Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|Place|Pl|Terrace|Parkway|Pkwy|Square|Sq)\b\.?",
                       entity="address")],
}
"""Signals per entity, most specific first: when two could match at one position the first wins."""

ENTITY_ORDER = tuple(ENTITY_SIGNALS)


def pii_signals(entities: list[str]) -> list[Signal]:
    """The signals of the given entities, in the fixed precedence order."""
    unknown = set(entities) - set(ENTITY_SIGNALS)
    if unknown:
        raise ValueError(f"unknown PII entities: {sorted(unknown)}")
    return [signal for entity in ENTITY_ORDER if entity in entities for signal in ENTITY_SIGNALS[entity]]
