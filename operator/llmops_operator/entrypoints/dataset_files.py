"""Reading a dataset's files: local paths (pvc:// claims included) or remote URIs through fsspec."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llmops_operator.core.uris import is_remote, local_path


def files_at(uri: str) -> list[Path]:
    path = local_path(uri)
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file())
    if not path.exists():
        raise FileNotFoundError(f"dataset {uri}: {path} does not exist")
    return [path]


def text_lines(uri: str) -> list[str]:
    if is_remote(uri):
        import fsspec

        with fsspec.open(uri, "rt") as handle:
            return handle.read().splitlines()
    return [line for path in files_at(uri) for line in path.read_text().splitlines()]


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
