"""The labelled evaluation corpus shipped with the guardrails: every `*.jsonl` file of the `corpus/` folder.

One JSON object per line: `id`, `text`, `label` (attack or benign), `family` (what kind of attack, or which
attack a benign case looks like), `language` (ISO 639-1), `direction` (input, output, or retrieved: a document
placed in the prompt, checked as input), `split` (train, validation or heldout: the held-out part is never
used for tuning) and `source` (whose text it is; corpus/SOURCES.md gives provenance and licence). Reading is pure
and strict: a malformed line stops the load with the file, the line number and the field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

CORPUS_DIR = Path(__file__).parent / "corpus"
LABELS = ("attack", "benign")
DIRECTIONS = ("input", "output", "retrieved")
SPLITS = ("train", "validation", "heldout")
FIELDS = ("id", "text", "label", "family", "language", "direction", "split", "source")
MAX_TEXT_CHARS = 100_000
MAX_FIELD_CHARS = 200


class CorpusError(ValueError):
    """A malformed corpus line; the message names the file, the line and the field."""


@dataclass(frozen=True)
class Case:
    id: str
    text: str
    label: str
    family: str
    language: str
    direction: str
    split: str
    source: str

    @property
    def attack(self) -> bool:
        return self.label == "attack"

    @property
    def scan_direction(self) -> str:
        """The engine direction that reads the case: retrieved documents reach the model inside the prompt."""
        return "input" if self.direction == "retrieved" else self.direction


def _choice(value: object, allowed: tuple[str, ...], field: str) -> str:
    if value not in allowed:
        raise ValueError(f"{field}: expected one of {', '.join(allowed)}, got {value!r}")
    return value  # type: ignore[return-value]


def _short_text(value: object, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{field}: expected a non-empty string")
    if len(value) > MAX_FIELD_CHARS:
        raise ValueError(f"{field}: longer than {MAX_FIELD_CHARS} characters")
    return value


def parse_case(document: object) -> Case:
    """A case from one decoded line; ValueError names the offending field."""
    if not isinstance(document, dict):
        raise ValueError("expected a JSON object")
    unknown = sorted(set(document) - set(FIELDS))
    if unknown:
        raise ValueError(f"{unknown[0]}: unknown field (fields are {', '.join(FIELDS)})")
    text = document.get("text")
    if not isinstance(text, str) or not text:
        raise ValueError("text: expected a non-empty string")
    if len(text) > MAX_TEXT_CHARS:
        raise ValueError(f"text: longer than {MAX_TEXT_CHARS} characters")
    language = _short_text(document.get("language"), "language")
    if not (len(language) == 2 and language.isalpha() and language.islower()):
        raise ValueError(f"language: expected an ISO 639-1 code such as 'en', got {language!r}")
    return Case(id=_short_text(document.get("id"), "id"), text=text,
                label=_choice(document.get("label"), LABELS, "label"),
                family=_short_text(document.get("family"), "family"), language=language,
                direction=_choice(document.get("direction"), DIRECTIONS, "direction"),
                split=_choice(document.get("split"), SPLITS, "split"),
                source=_short_text(document.get("source"), "source"))


def parse_lines(lines: Iterable[str], name: str) -> list[Case]:
    cases = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            cases.append(parse_case(json.loads(line)))
        except json.JSONDecodeError as err:
            raise CorpusError(f"{name}:{number}: not JSON: {err.msg}") from None
        except ValueError as err:
            raise CorpusError(f"{name}:{number}: {err}") from None
    return cases


def load_corpus(directory: Path = CORPUS_DIR, split: str | None = None) -> list[Case]:
    """Every case of every `*.jsonl` file in `directory` (sorted by file name), optionally of one split only.
    Ids are unique across the files."""
    if split is not None:
        _choice_or_error(split)
    cases: list[Case] = []
    seen: dict[str, str] = {}
    for path in sorted(directory.glob("*.jsonl")):
        for case in parse_lines(path.read_text(encoding="utf-8").splitlines(), path.name):
            if case.id in seen:
                raise CorpusError(f"{path.name}: id {case.id!r} is also in {seen[case.id]}")
            seen[case.id] = path.name
            cases.append(case)
    return [case for case in cases if split is None or case.split == split]


def _choice_or_error(split: str) -> None:
    if split not in SPLITS:
        raise CorpusError(f"split: expected one of {', '.join(SPLITS)}, got {split!r}")
