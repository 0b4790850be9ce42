"""Training text: records read from a URI, tokenized and packed into fixed-length blocks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

from llmops_operator.runtime.uris import is_remote, local_path


def _files(uri: str) -> list[Path]:
    path = local_path(uri)
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file())
    if not path.exists():
        raise FileNotFoundError(f"dataset {uri}: {path} does not exist")
    return [path]


def _read_text(uri: str) -> list[str]:
    if is_remote(uri):
        import fsspec

        with fsspec.open(uri, "rt") as handle:
            return handle.read().splitlines()
    return [line for path in _files(uri) for line in path.read_text().splitlines()]


def parquet_tables(uri: str) -> list[Any]:
    """The Parquet file at `uri`, or every *.parquet file under a directory (sorted), as pyarrow tables."""
    import pyarrow.parquet as pq

    if is_remote(uri):
        import fsspec

        with fsspec.open(uri, "rb") as handle:
            return [pq.read_table(handle)]
    path = local_path(uri)
    if not path.exists():
        raise FileNotFoundError(f"{uri} does not exist ({path})")
    files = sorted(path.rglob("*.parquet")) if path.is_dir() else [path]
    if not files:
        raise FileNotFoundError(f"{uri} holds no .parquet file")
    return [pq.read_table(p) for p in files]


def read_records(dataset: dict[str, Any]) -> list[dict[str, Any]]:
    """Records of a DatasetSpec (camelCase dict): jsonl, parquet or text (one record per line), or the rows
    of a Feast feature service rendered as texts under textField (runtime/feature_rows.py)."""
    if dataset.get("featureService"):
        from llmops_operator.runtime.feature_rows import feature_service_texts

        return [{dataset.get("textField", "text"): text} for text in feature_service_texts(dataset)]
    fmt, uri = dataset.get("format", "jsonl"), dataset["uri"]
    if fmt == "parquet":
        return [row for table in parquet_tables(uri) for row in table.to_pylist()]
    lines = [line for line in _read_text(uri) if line.strip()]
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
