"""Deterministic child names: readable, DNS-safe, and hashed only when too long."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from llmops_operator.api.v1alpha1.common import Resource

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


def kind_tag(obj: Resource) -> str:
    """The kind's short name (tj, ft, vidx, fv, grail, prel, lsvc): what keeps children of two kinds apart."""
    return obj.info.short_names[0]


def owned_name(obj: Resource, *parts: str, max_length: int = 63) -> str:
    """`<name>-<kind tag>-<parts>`: a TrainingJob and a FeatureView both named `x` never share a child."""
    return child_name(obj.name, kind_tag(obj), *parts, max_length=max_length)
