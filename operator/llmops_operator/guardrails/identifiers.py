"""National identity numbers, cards and SSNs: validators by their published check rules (pure, O(length)).

Each validator takes the digits (or characters) of a candidate without separators and says whether it is a
well-formed number of its kind. A random digit string passes a one-digit mod-10/mod-11 check about one time in
ten, so the engine asks for a context word (`CONTEXT`) before it trusts a bare number whose only defence is
such a check; two check digits, a birth date or a fixed format make a number specific enough on its own.
"""

from __future__ import annotations

import datetime

_DNI_LETTERS = "TRWAGMYFPDXBNJZSQVHLCKE"


def luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _date_valid(year: int, month: int, day: int) -> bool:
    try:
        datetime.date(year, month, day)
    except ValueError:
        return False
    return True


_CARD_PREFIXES = ("4", "51", "52", "53", "54", "55", "22", "23", "24", "25", "26", "27", "34", "37", "300", "301",
                  "302", "303", "304", "305", "36", "38", "6011", "65", "644", "645", "646", "647", "648", "649",
                  "35", "62", "50", "56", "57", "58", "60", "63", "67", "81", "82")


def card_valid(digits: str) -> bool:
    """A payment card: 13 to 19 digits, an issuer prefix (Visa, Mastercard, Amex, Diners, Discover, JCB,
    UnionPay, Maestro, Mir, RuPay), Luhn."""
    return 13 <= len(digits) <= 19 and digits.startswith(_CARD_PREFIXES) and luhn_valid(digits)


def us_ssn_valid(digits: str) -> bool:
    """A US SSN as issued: area not 000, 666 or 9xx, group not 00, serial not 0000."""
    if len(digits) != 9:
        return False
    area, group, serial = digits[:3], digits[3:5], digits[5:]
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


def es_dni_valid(text: str) -> bool:
    """Spanish DNI (8 digits + letter) or NIE (X/Y/Z + 7 digits + letter): the letter is the number mod 23."""
    compact = text.upper()
    if len(compact) != 9 or not compact[-1].isalpha():
        return False
    number = (str("XYZ".index(compact[0])) if compact[0] in "XYZ" else compact[0]) + compact[1:-1]
    return number.isdigit() and _DNI_LETTERS[int(number) % 23] == compact[-1]


def _weighted(digits: str, weights: range | tuple[int, ...]) -> int:
    return sum(int(d) * w for d, w in zip(digits, weights))


def br_cpf_valid(digits: str) -> bool:
    """Brazilian CPF: 11 digits, two mod-11 check digits, not one repeated digit."""
    if len(digits) != 11 or len(set(digits)) == 1:
        return False
    for length in (9, 10):
        check = _weighted(digits[:length], range(length + 1, 1, -1)) * 10 % 11 % 10
        if check != int(digits[length]):
            return False
    return True


def br_cnpj_valid(digits: str) -> bool:
    """Brazilian CNPJ: 14 digits, two mod-11 check digits."""
    if len(digits) != 14 or len(set(digits)) == 1:
        return False
    weights = (6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2)
    for length in (12, 13):
        remainder = _weighted(digits[:length], weights[13 - length:]) % 11
        if (0 if remainder < 2 else 11 - remainder) != int(digits[length]):
            return False
    return True


_VERHOEFF_P = [list(range(10)), [1, 5, 7, 6, 2, 8, 3, 0, 9, 4]]
for _row in range(2, 8):
    _VERHOEFF_P.append([_VERHOEFF_P[1][_VERHOEFF_P[_row - 1][k]] for k in range(10)])


def _verhoeff_table() -> list[list[int]]:
    """The dihedral group D5's multiplication table, as Verhoeff's check uses it."""
    table = []
    for i in range(10):
        row = []
        for j in range(10):
            if i < 5 and j < 5:
                row.append((i + j) % 5)
            elif i < 5:
                row.append(5 + (i + j) % 5)
            elif j < 5:
                row.append(5 + (i - j) % 5)
            else:
                row.append((i - j) % 5)
        table.append(row)
    return table


_VERHOEFF_D = _verhoeff_table()


def verhoeff_valid(digits: str) -> bool:
    check = 0
    for position, char in enumerate(reversed(digits)):
        check = _VERHOEFF_D[check][_VERHOEFF_P[position % 8][int(char)]]
    return check == 0


def in_aadhaar_valid(digits: str) -> bool:
    """Indian Aadhaar: 12 digits, first not 0 or 1, Verhoeff check digit."""
    return len(digits) == 12 and digits[0] not in "01" and verhoeff_valid(digits)


def fr_nir_valid(text: str) -> bool:
    """French NIR (social security number): sex 1/2, birth month, 13 characters (Corsica 2A/2B), key = 97 - n
    mod 97."""
    compact = text.upper()
    if len(compact) != 15 or compact[0] not in "12" or not compact[13:].isdigit():
        return False
    month = int(compact[3:5]) if compact[3:5].isdigit() else 0
    if not (1 <= month <= 12 or 20 <= month <= 42 or 50 <= month <= 99):
        return False
    body = compact[:13].replace("2A", "19").replace("2B", "18")
    if not body.isdigit():
        return False
    return 97 - int(body) % 97 == int(compact[13:])


_CF_ODD = [1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16, 10, 22, 25, 24, 23]


def it_codice_fiscale_valid(text: str) -> bool:
    """Italian codice fiscale: 16 characters, the last a check letter of odd/even position values mod 26."""
    code = text.upper()
    if len(code) != 16 or not code.isalnum():
        return False
    total = 0
    for position, char in enumerate(code[:15]):
        value = int(char) if char.isdigit() else ord(char) - ord("A")
        total += _CF_ODD[value] if position % 2 == 0 else value
    return chr(ord("A") + total % 26) == code[15]


def de_steuer_id_valid(digits: str) -> bool:
    """German tax ID (Steuerliche Identifikationsnummer): 11 digits, first not 0, in the first ten one digit
    twice or three times and the rest at most once, ISO 7064 MOD 11,10 check digit."""
    if len(digits) != 11 or digits[0] == "0":
        return False
    counts = sorted((digits[:10].count(d) for d in set(digits[:10])), reverse=True)
    if counts[0] not in (2, 3) or (len(counts) > 1 and counts[1] > 1):
        return False
    product = 10
    for char in digits[:10]:
        total = (int(char) + product) % 10 or 10
        product = total * 2 % 11
    return (11 - product) % 10 == int(digits[10])


def nl_bsn_valid(digits: str) -> bool:
    """Dutch BSN: 9 digits passing the eleven-test (weights 9..2 and -1)."""
    if len(digits) != 9 or digits == "000000000":
        return False
    return (_weighted(digits[:8], range(9, 1, -1)) - int(digits[8])) % 11 == 0


def pl_pesel_valid(digits: str) -> bool:
    """Polish PESEL: 11 digits, a birth date (century in the month), weighted mod-10 check digit."""
    if len(digits) != 11:
        return False
    year, month, day = int(digits[:2]), int(digits[2:4]), int(digits[4:6])
    century = {0: 1900, 1: 2000, 2: 2100, 3: 2200, 4: 1800}.get(month // 20)
    if century is None or not _date_valid(century + year, month % 20, day):
        return False
    return (10 - _weighted(digits[:10], (1, 3, 7, 9) * 3) % 10) % 10 == int(digits[10])


def se_personnummer_valid(digits: str) -> bool:
    """Swedish personnummer: YYMMDDNNNC (10 digits, or 12 with the century), a birth date (day + 60 for a
    samordningsnummer), Luhn over the last ten."""
    if len(digits) == 12:
        digits = digits[2:]
    if len(digits) != 10:
        return False
    month, day = int(digits[2:4]), int(digits[4:6])
    day = day - 60 if day > 60 else day
    return _date_valid(2000, month, day) and luhn_valid(digits)


_CN_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def cn_resident_id_valid(text: str) -> bool:
    """Chinese resident identity card: 18 characters, birth date YYYYMMDD at 7-14, ISO 7064 MOD 11-2 check
    character (0-9 or X)."""
    code = text.upper()
    if len(code) != 18 or not code[:17].isdigit():
        return False
    if not (1900 <= int(code[6:10]) <= 2100 and _date_valid(int(code[6:10]), int(code[10:12]), int(code[12:14]))):
        return False
    check = (12 - _weighted(code[:17], _CN_WEIGHTS) % 11) % 11
    return ("X" if check == 10 else str(check)) == code[17]


_NINO_NEVER_ISSUED = ("BG", "GB", "NK", "KN", "TN", "NT", "ZZ")


def uk_nino_valid(text: str) -> bool:
    """UK National Insurance number: two prefix letters (D, F, I, Q, U, V never; O never second; some pairs never
    issued), six digits, suffix A-D."""
    code = text.upper()
    if len(code) != 9 or not code[2:8].isdigit() or code[8] not in "ABCD":
        return False
    first, second = code[0], code[1]
    if first in "DFIQUV" or second in "DFIQUVO" or not (first.isalpha() and second.isalpha()):
        return False
    return code[:2] not in _NINO_NEVER_ISSUED


def ca_sin_valid(digits: str) -> bool:
    """Canadian Social Insurance Number: 9 digits, first not 0 or 8, Luhn."""
    return len(digits) == 9 and digits[0] not in "08" and luhn_valid(digits)
