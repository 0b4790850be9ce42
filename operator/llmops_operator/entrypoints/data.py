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


Example = tuple[list[int], list[int]]
"""(input ids, labels) of one conversation."""


def fit_length(example: Example, max_length: int, truncation: str) -> Example | None:
    """The example cut to max_length tokens (right: keep the start, left: keep the end), or None to drop it."""
    ids, labels = example
    if len(ids) <= max_length:
        return example
    if truncation == "drop":
        return None
    if truncation == "left":
        return ids[-max_length:], labels[-max_length:]
    return ids[:max_length], labels[:max_length]


def pack_examples(examples: Iterable[Example], block: int, pad: int, packing: bool,
                  ignore: int = -100) -> list[dict[str, list[int]]]:
    """Fixed-length training sequences of whole examples, each with input_ids, labels and position_ids.

    With packing, consecutive examples share a sequence while they fit (an example never spans two).
    position_ids restart at 0 where each example starts: the model's attention mask is built from them
    (transformers reads a restart as a sequence boundary when no attention_mask is passed), so no token
    attends across examples and each example's positions are those it would have alone. The padding
    at the end is its own span of positions, with labels `ignore`."""
    blocks: list[dict[str, list[int]]] = []
    current: dict[str, list[int]] = {"input_ids": [], "labels": [], "position_ids": []}
    for ids, labels in examples:
        if len(ids) > block:
            raise ValueError(f"an example of {len(ids)} tokens does not fit a sequence of {block}")
        if current["input_ids"] and (not packing or len(current["input_ids"]) + len(ids) > block):
            blocks.append(_padded(current, block, pad, ignore))
            current = {"input_ids": [], "labels": [], "position_ids": []}
        current["input_ids"] += ids
        current["labels"] += labels
        current["position_ids"] += list(range(len(ids)))
    if current["input_ids"]:
        blocks.append(_padded(current, block, pad, ignore))
    return blocks


def _padded(sequence: dict[str, list[int]], block: int, pad: int, ignore: int) -> dict[str, list[int]]:
    missing = block - len(sequence["input_ids"])
    return {"input_ids": sequence["input_ids"] + [pad] * missing, "labels": sequence["labels"] + [ignore] * missing,
            "position_ids": sequence["position_ids"] + list(range(missing))}


def collate(blocks: list[Any]) -> dict[str, Any]:
    """A batch of tensors: plain token blocks train on every token; dict blocks carry their labels and positions."""
    import torch

    if blocks and isinstance(blocks[0], dict):
        return {key: torch.tensor([b[key] for b in blocks]) for key in blocks[0]}
    ids = torch.tensor(blocks)
    return {"input_ids": ids, "labels": ids}
