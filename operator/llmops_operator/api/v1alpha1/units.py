"""Kubernetes quantities and durations: the annotated types the API uses and their pure parsers."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated

from pydantic import Field

QUANTITY_PATTERN = r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$"
DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"

Quantity = int | Annotated[str, Field(pattern=QUANTITY_PATTERN, max_length=32)]
"""A Kubernetes resource quantity such as 500m, 2, 16Gi."""

Duration = Annotated[str, Field(pattern=DURATION_PATTERN, max_length=32)]
"""A Go-style duration such as 90s, 30m, 1h30m."""

_SUFFIX = {
    "": Decimal(1), "m": Decimal("0.001"),
    "k": Decimal(10) ** 3, "M": Decimal(10) ** 6, "G": Decimal(10) ** 9,
    "T": Decimal(10) ** 12, "P": Decimal(10) ** 15, "E": Decimal(10) ** 18,
    "Ki": Decimal(2) ** 10, "Mi": Decimal(2) ** 20, "Gi": Decimal(2) ** 30,
    "Ti": Decimal(2) ** 40, "Pi": Decimal(2) ** 50, "Ei": Decimal(2) ** 60,
}
_QUANTITY = re.compile(QUANTITY_PATTERN)
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_quantity(value: int | float | str) -> float:
    """A quantity as a plain number: '500m' -> 0.5, '2Gi' -> 2147483648.0."""
    if isinstance(value, (int, float)):
        return float(value)
    match = _QUANTITY.match(value)
    if not match:
        raise ValueError(f"not a Kubernetes quantity: {value!r}")
    number = value[: len(value) - len(match.group(2) or "")]
    return float(Decimal(number) * _SUFFIX[match.group(2) or ""])


def gib(value: int | float | str) -> float:
    """A memory quantity in GiB."""
    return parse_quantity(value) / 2**30


def parse_duration(value: str) -> float:
    """A Go-style duration in seconds: '1h30m' -> 5400.0."""
    parts = _DURATION_PART.findall(value)
    if not parts or "".join(n + u for n, u in parts) != value:
        raise ValueError(f"not a duration: {value!r}")
    return sum(float(n) * _SECONDS[u] for n, u in parts)
