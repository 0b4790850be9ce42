"""Training text: records read from a URI, tokenized and packed into fixed-length blocks."""

from __future__ import annotations

import json
from typing import Any, Iterable

from llmops_operator.entrypoints.dataset_files import parquet_tables, text_lines


def read_records(dataset: dict[str, Any]) -> list[dict[str, Any]]:
    """Records of a DatasetSpec (camelCase dict): jsonl, parquet or text (one record per line), or the rows
    of a Feast feature service rendered as texts under textField (entrypoints/feature_rows.py)."""
    if dataset.get("featureService"):
        from llmops_operator.entrypoints.feature_rows import feature_service_texts

        return [{dataset.get("textField", "text"): text} for text in feature_service_texts(dataset)]
    fmt, uri = dataset.get("format", "jsonl"), dataset["uri"]
    if fmt == "parquet":
        return [row for table in parquet_tables(uri) for row in table.to_pylist()]
    lines = [line for line in text_lines(uri) if line.strip()]
    if fmt == "text":
        return [{dataset.get("textField", "text"): line} for line in lines]
    return [json.loads(line) for line in lines]


def texts(records: Iterable[dict[str, Any]], field: str) -> list[str]:
    out = []
    for i, record in enumerate(records):
        if field not in record:
            raise KeyError(f"record {i} has no field {field!r} (dataset.textField)")
        out.append(str(record[field]))
    return out


def split(items: list[Any], validation_fraction: float) -> tuple[list[Any], list[Any]]:
    """A deterministic held-out tail (at least one item when a fraction is asked for and there is room)."""
    held = int(len(items) * validation_fraction)
    if validation_fraction > 0 and held == 0 and len(items) > 1:
        held = 1
    return (items[: len(items) - held], items[len(items) - held:]) if held else (items, [])


def pack(token_ids: Iterable[list[int]], block: int, separator: int | None) -> list[list[int]]:
    """Concatenate tokenized texts (separated by `separator`) and cut them into blocks of `block` tokens."""
    stream: list[int] = []
    for ids in token_ids:
        stream.extend(ids)
        if separator is not None:
            stream.append(separator)
    return [stream[i:i + block] for i in range(0, len(stream) - block + 1, block)]


def shard(blocks: list[Any], rank: int, world: int) -> list[Any]:
    """This worker's share; every worker gets the same count so collective steps stay in lockstep."""
    per_worker = len(blocks) // world
    return blocks[rank * per_worker:(rank + 1) * per_worker]
