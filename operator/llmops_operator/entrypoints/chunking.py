"""Documents of an ingest source, split into chunks with stable content ids (pure, apart from reading files).

A chunk's id is a hash of its document's path and its text: re-reading an unchanged document
gives the same ids, so the ingest embeds only chunks it has not stored yet and deletes the ids
that no longer appear (a removed or edited document).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Iterable

from llmops_operator.core.uris import is_remote, local_path

ID_LENGTH = 32
"""Hex characters of a chunk id (128 bits); the collection's primary key holds up to 64."""
MAX_TEXT = 60000
"""Longest chunk text stored (the text field is a VARCHAR of 65535 bytes)."""


@dataclass(frozen=True)
class Document:
    path: str
    """Path relative to the source root, with / separators."""
    text: str


@dataclass(frozen=True)
class Chunk:
    id: str
    source: str
    text: str


class SourceError(ValueError):
    """The source cannot be read (missing directory, nothing matched, undecodable file)."""


def chunk_id(source: str, text: str) -> str:
    return hashlib.sha256(f"{source}\n{text}".encode()).hexdigest()[:ID_LENGTH]


def _cut(text: str, start: int, size: int) -> int:
    """End of the chunk starting at `start`: at the last whitespace in its second half, else at `size`."""
    end = start + size
    if end >= len(text):
        return len(text)
    space = max(text.rfind(" ", start + size // 2, end), text.rfind("\n", start + size // 2, end))
    return space + 1 if space > 0 else end


def split_text(text: str, size: int, overlap: int) -> list[str]:
    """Windows of at most `size` characters, each starting `overlap` characters before the previous one ended."""
    if overlap >= size:
        raise ValueError(f"chunking.overlap ({overlap}) must be smaller than chunking.size ({size})")
    pieces, start = [], 0
    while start < len(text):
        end = _cut(text, start, size)
        piece = text[start:end].strip()
        if piece:
            pieces.append(piece)
        if end >= len(text):
            break
        start = max(end - overlap, start + 1)
    return pieces


def chunk_documents(documents: Iterable[Document], size: int, overlap: int) -> list[Chunk]:
    """Every document's chunks, each id once (a text repeated within one document is stored once)."""
    seen: dict[str, Chunk] = {}
    for doc in documents:
        for text in split_text(doc.text, size, overlap):
            chunk = Chunk(chunk_id(doc.path, text), doc.path, text[:MAX_TEXT])
            seen.setdefault(chunk.id, chunk)
    return list(seen.values())


def source_digest(documents: Iterable[Document]) -> str:
    """sha256 over every (path, text), in path order: equal digests mean an unchanged source."""
    digest = hashlib.sha256()
    for doc in sorted(documents, key=lambda d: d.path):
        digest.update(doc.path.encode() + b"\0" + hashlib.sha256(doc.text.encode()).digest())
    return digest.hexdigest()


def glob_regex(pattern: str) -> re.Pattern[str]:
    """A source.include glob as a regex over the whole relative path: ** spans directories, * and ? do not."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        else:
            out.append({"*": "[^/]*", "?": "[^/]"}.get(pattern[i], re.escape(pattern[i])))
            i += 1
    return re.compile("".join(out) + r"\Z")


def _matches(relative: str, patterns: list[str]) -> bool:
    return any(glob_regex(p.lstrip("/")).match(relative) for p in patterns)


def _hidden(relative: str) -> bool:
    """ConfigMap mounts keep their data in ..data and ..<timestamp> directories: skip them and dotfiles."""
    return any(part.startswith(".") for part in PurePosixPath(relative).parts)


def _decode(raw: bytes, where: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise SourceError(f"{where}: not UTF-8 text ({err.reason} at byte {err.start}); narrow source.include") from None


def read_local(root: Path, include: list[str]) -> list[Document]:
    if not root.is_dir():
        raise SourceError(f"source {root}: no such directory")
    docs = []
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if path.is_file() and not _hidden(relative) and _matches(relative, include):
            docs.append(Document(relative, _decode(path.read_bytes(), str(path))))
    return docs


def read_remote(uri: str, include: list[str]) -> list[Document]:
    import fsspec

    fs, root = fsspec.core.url_to_fs(uri)
    root = root.rstrip("/")
    docs = []
    for path in sorted(fs.find(root)):
        relative = path.removeprefix(root).lstrip("/")
        if not _hidden(relative) and _matches(relative, include):
            docs.append(Document(relative, _decode(fs.cat_file(path), f"{uri}/{relative}")))
    return docs


def read_documents(uri: str, include: list[str]) -> list[Document]:
    """The documents under `uri` whose relative path matches one of the `include` globs."""
    docs = read_remote(uri, include) if is_remote(uri) else read_local(local_path(uri), include)
    if not docs:
        raise SourceError(f"source {uri}: no file matches source.include {include}")
    return docs
