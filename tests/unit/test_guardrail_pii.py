"""PII and secrets breadth: every national ID by its check rule, digit strings with any separator, phone numbers
by `phonenumbers`, obfuscated emails, secrets on input, and the look-alikes each validator turns away."""

from __future__ import annotations

import time

import pytest

from llmops_operator.guardrails import identifiers as ids
from llmops_operator.guardrails.engine import Guardrail
from llmops_operator.guardrails.numbers import windows
from llmops_operator.guardrails.pii import pii_signals

ALL = ["email", "phone", "creditCard", "ssn", "iban", "nationalId", "apiKey"]


def guardrail(entities: list[str] = ALL, scope: str = "both") -> Guardrail:
    return Guardrail.from_document({"format": "llmops.dev/guardrail-policy/v1", "checks": [
        {"name": "pii", "type": "piiRedaction", "action": "redact", "scope": scope, "entities": entities}]})


def found(text: str, direction: str = "input", entities: list[str] = ALL) -> list[tuple[str, str, str]]:
    """(entity, signal, matched text) of every hit."""
    verdict = guardrail(entities).check(text, direction)
    return [(h.entity, h.signals[0], text[h.start:h.end]) for h in verdict.hits]


@pytest.mark.parametrize("valid, good, bad", [
    (ids.br_cpf_valid, "52998224725", "52998224726"),
    (ids.br_cnpj_valid, "11222333000181", "11222333000182"),
    (ids.in_aadhaar_valid, "234567890124", "234567890125"),
    (ids.it_codice_fiscale_valid, "RSSMRA85T10A562S", "RSSMRA85T10A562T"),
    (ids.de_steuer_id_valid, "86095742719", "86095742718"),
    (ids.nl_bsn_valid, "111222333", "111222334"),
    (ids.pl_pesel_valid, "44051401359", "44051401358"),
    (ids.se_personnummer_valid, "8112189876", "8112189877"),
    (ids.cn_resident_id_valid, "11010519491231002X", "110105194912310021"),
    (ids.ca_sin_valid, "130692544", "130692545"),
    (ids.es_dni_valid, "12345678Z", "12345678A"),
    (ids.uk_nino_valid, "AB123456C", "GB123456C"),
    (ids.us_ssn_valid, "123456789", "666456789"),
    (ids.card_valid, "4111111111111111", "4111111111111112"),
])
def test_each_validator_accepts_a_well_formed_number_and_refuses_a_wrong_check_digit(valid, good, bad):
    assert valid(good) and not valid(bad)


def test_verhoeff_and_the_french_nir_key():
    assert ids.verhoeff_valid("2363") and not ids.verhoeff_valid("2364")
    body = "1850578006084"
    assert ids.fr_nir_valid(body + "%02d" % (97 - int(body) % 97))
    assert not ids.fr_nir_valid(body + "%02d" % ((97 - int(body) % 97 + 1) % 97))


@pytest.mark.parametrize("text, entity, signal, matched", [
    ("Mi DNI es 12345678Z", "nationalId", "es-dni", "12345678Z"),
    ("nie: x1234567l", "nationalId", "es-dni", "x1234567l"),
    ("CPF 529.982.247-25", "nationalId", "br-cpf", "529.982.247-25"),
    ("CNPJ 11.222.333/0001-81", "nationalId", "br-cnpj", "11.222.333/0001-81"),
    ("Aadhaar 2345 6789 0124", "nationalId", "in-aadhaar", "2345 6789 0124"),
    ("codice fiscale RSSMRA85T10A562S", "nationalId", "it-codice-fiscale", "RSSMRA85T10A562S"),
    ("Steuer-ID 86095742719", "nationalId", "de-steuer-id", "86095742719"),
    ("mijn BSN is 111222333", "nationalId", "nl-bsn", "111222333"),
    ("PESEL 44051401359", "nationalId", "pl-pesel", "44051401359"),
    ("personnummer 811218-9876", "nationalId", "se-personnummer", "811218-9876"),
    ("身份证 11010519491231002X", "nationalId", "cn-resident-id", "11010519491231002X"),
    ("NI number AB 12 34 56 C", "nationalId", "uk-nino", "AB 12 34 56 C"),
    ("SIN 130 692 544", "nationalId", "ca-sin", "130 692 544"),
    ("My SSN is 123-45-6789.", "ssn", "us-ssn", "123-45-6789"),
    ("ssn 123456789", "ssn", "us-ssn", "123456789"),
    ("card 4111.1111.1111.1111 exp 12/26", "creditCard", "credit-card", "4111.1111.1111.1111"),
    ("card 4111/1111/1111/1111", "creditCard", "credit-card", "4111/1111/1111/1111"),
    ("cuatro uno uno uno uno uno uno uno uno uno uno uno uno uno uno uno", "creditCard", "credit-card-words",
     "cuatro uno uno uno uno uno uno uno uno uno uno uno uno uno uno uno"),
    ("Appelle-moi au 06 12 34 56 78", "phone", "phone", "06 12 34 56 78"),
    ("Llámame al +34 612 345 678", "phone", "phone", "+34 612 345 678"),
    ("my cell is (415) 555-2671", "phone", "phone", "(415) 555-2671"),
    ("Мой телефон: 8 912 345 67 89", "phone", "phone", "8 912 345 67 89"),
    ("jon.snow[at]winterfell[dot]org", "email", "email", "jon.snow[at]winterfell[dot]org"),
    ("kate at outlook dot com", "email", "email-spelled", "kate at outlook dot com"),
    ("lucia arroba gmail punto com", "email", "email-spelled", "lucia arroba gmail punto com"),
])
def test_each_kind_is_found_with_its_span(text, entity, signal, matched):
    assert (entity, signal, matched) in found(text)


@pytest.mark.parametrize("text", [
    "Mi DNI es 12345678A",  # wrong check letter
    "Order 52998224726 shipped",  # CPF with a wrong check digit
    "Ticket 111222333 was closed",  # passes the BSN eleven-test, but no context word
    "Employee ID 123456789 starts next week",  # a valid SSN shape without "SSN"
    "Booking reference 7825 6984 0021",  # no Aadhaar context, and not a valid number
    "gift card code 6516-4512-8617-7074",  # its 4-4-4 run alone would be an Aadhaar number
    "Card: **** **** **** 4242",
    "My order number is 1234567890123456",  # fails Luhn
    "Invoice INV-2024-000123 totals 1,234.56 EUR",
    "The meeting is on 2026-03-14 at 10:30",
    "Server 10.20.30.40 answers ping",
    "I work at google.com",
    "Look at this dot plot",
    "uuid 123e4567-e89b-12d3-a456-426614174000",
    "Part number 655-443-277 fits",
])
def test_look_alikes_are_not_personal_data(text):
    assert found(text) == []


@pytest.mark.parametrize("text, signal", [
    ("ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789", "github-token"),
    ("xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx", "slack-token"),
    ("OPENAI_API_KEY=sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zAB7CD0", "assigned-secret"),
    ("why is sk-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zAB7CD0Ef refused", "openai-key"),
    ("stripe sk_live_4eC39HqLyjWDarjtT1zdp7dc", "stripe-key"),
    ("key AIzaSyD4k9Xx2mQw7Lr0Tz8Vb3Nc6Jp1Hs5Gf4E", "google-api-key"),
    ("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "aws-secret-key"),
    ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJlLXZhbHVlLWhlcmU", "bearer-token"),
    ("token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJlLXZhbHVlLWhlcmU", "jwt"),
    ("DB_PASSWORD=hExVn1zGnF!alZSw5yU3", "assigned-secret"),
    ("the admin password is: DBZ9uj7ND#KHgOY6", "assigned-secret"),
    ("la contraseña es btRXful34Y9v", "assigned-secret"),
    ("密码是 pd5Mtm22dCdh", "assigned-secret"),
    ("- name: DB_PASS\n  value: WyNZyQWHM2uM3hmSNqFJBJix", "listed-secret"),
])
@pytest.mark.parametrize("direction", ["input", "output"])
def test_secrets_are_found_in_prompts_as_in_answers(text, signal, direction):
    assert [s for _, s, _ in found(text, direction)] == [signal]


@pytest.mark.parametrize("text", [
    "api_key = os.environ['OPENAI_API_KEY']",
    "password = getpass.getpass()",
    "token = request.headers.get('Authorization')",
    "GITHUB_TOKEN: ${{ secrets.GITHUB_TOKEN }}",
    "token: <YOUR_TOKEN_HERE>",
    "ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx is what a token looks like",
    "sk-proj-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    "api_key: REPLACE_ME_WITH_KEY",
    "password is required",
    "Your password is incorrect.",
    "pwd: /home/alex/projects/api",
    "The JWT header eyJhbGciOi... names the algorithm",
    "Authorization: Bearer <token>",
])
def test_secret_look_alikes_are_not_secrets(text):
    assert found(text) == []


def test_a_check_reports_only_the_entities_it_asks_for():
    text = "call +33 6 12 34 56 78 or pay with 4111 1111 1111 1111"
    assert [e for e, _, _ in found(text, entities=["creditCard"])] == ["creditCard"]
    assert [e for e, _, _ in found(text, entities=["phone"])] == ["phone"]
    assert pii_signals(["email"]) and all(s.entity == "email" for s in pii_signals(["email"]))


def test_digit_strings_scan_in_time_linear_in_the_text():
    # The worst shapes for the validators: single digits (every window of every candidate is tried) and phone
    # numbers back to back. Best of three at 8 KB and at 64 KB: eight times the text may not cost more than
    # sixteen times the CPU time (a quadratic pass would cost 64). Wall time would also count the waits for a core
    # on a busy machine, which a short run is more likely to escape than a long one.
    check = guardrail().check
    for unit in ("1 ", "+33 6 12 34 56 78, "):
        times = []
        for size in (8_000, 64_000):
            text = (unit * (size // len(unit) + 1))[:size]
            best = float("inf")
            for _ in range(3):
                started = time.process_time()
                check(text)
                best = min(best, time.process_time() - started)
            times.append(best)
        assert times[1] < 16 * times[0], (unit, times)


def test_a_digit_string_is_tried_whole_then_by_the_runs_at_its_ends_longest_first():
    """A card with its expiry (4-4-4-4 then 2-2) holds the card at its start; runs in the middle are never tried,
    and a 4-4-4 run inside a longer candidate does not stand as an Aadhaar number by its format alone."""
    tried = [(first, stop, [(kind.label, trusted) for kind, trusted in kinds])
             for first, stop, _, _, kinds in windows((4, 4, 4, 4, 2, 2))]
    assert tried == [(0, 5, [("credit-card", True), ("cn-resident-id", True)]), (1, 6, [("credit-card", True)]),
                     (0, 4, [("credit-card", True)]), (2, 6, [("in-aadhaar", False), ("se-personnummer", False)]),
                     (0, 3, [("in-aadhaar", False), ("se-personnummer", False)])]
    [(_, _, _, _, alone)] = windows((4, 4, 4))
    assert dict((kind.label, trusted) for kind, trusted in alone) == {"in-aadhaar": True, "se-personnummer": False}
