"""Deterministic child names: readable, DNS-safe, and hashed only when too long."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

_INVALID = re.compile(r"[^a-z0-9-]+")


def short_hash(value: Any, length: int = 8) -> str:
    """A stable hex digest of any JSON-able value (dict keys sorted)."""
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def child_name(*parts: str, max_length: int = 63) -> str:
    """Join parts into a DNS-1123 label; when too long, truncate and append a hash of the full name.

    63 is the label limit; Services and pods derived from children (KServe, KubeRay) add their own
    suffixes, so builders pass a smaller max_length where the child's own children need room.
    """
    name = _INVALID.sub("-", "-".join(p for p in parts if p).lower()).strip("-")
    if len(name) <= max_length:
        return name
    digest = short_hash(name)
    return f"{name[: max_length - len(digest) - 1].rstrip('-')}-{digest}"
